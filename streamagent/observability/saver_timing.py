"""``InstrumentedSaver``: time every call of a checkpoint saver into :class:`AgentMetrics`.

A ``BaseCheckpointSaver`` that delegates each method (sync and async) to the saver it wraps
and records ``streamagent_checkpoint_operation_duration_seconds{operation}``. The operation
label is the sync method name (``aput`` is recorded as ``put``), so the label set is small
and fixed. Failures are timed too and re-raised unchanged. Attributes the base class does not
define (``setup()``, ``client``...) are forwarded to the wrapped saver.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> from streamagent.observability.metrics import AgentMetrics
    >>> metrics = AgentMetrics()
    >>> saver = InstrumentedSaver(InMemorySaver(), metrics)
    >>> saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
    True
    >>> b'operation="get_tuple"' in metrics.exposition()
    True
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from streamagent.observability.metrics import AgentMetrics

__all__ = ["InstrumentedSaver"]


#: methods a saver may leave to ``BaseCheckpointSaver`` (which raises NotImplementedError or
#: falls back to a generic walk): the wrapper overrides each only when the wrapped saver does,
#: so capability detection (LangGraph's conformance suite, ``langgraph dev``) sees the same
_OPTIONAL = (
    "delete_thread",
    "adelete_thread",
    "delete_for_runs",
    "adelete_for_runs",
    "copy_thread",
    "acopy_thread",
    "prune",
    "aprune",
    "get_delta_channel_history",
    "aget_delta_channel_history",
)
_VARIANTS: dict[frozenset[str], type[InstrumentedSaver]] = {}


def _overridden(saver_type: type, name: str) -> bool:
    return getattr(saver_type, name, None) is not getattr(BaseCheckpointSaver, name, None)


class InstrumentedSaver(BaseCheckpointSaver[Any]):
    """Wrap ``saver`` so each of its operations is timed into ``metrics``.

    The wrapper has exactly the capabilities of the wrapped saver: an optional method
    (``delete_for_runs``, ``copy_thread``, ``prune``, ``get_delta_channel_history``...) the
    wrapped saver does not implement is not overridden here either (the instance's class is
    a cached subclass that adds only the wrapped saver's optional methods).
    """

    def __new__(
        cls, saver: BaseCheckpointSaver[Any] | None = None, metrics: AgentMetrics | None = None
    ) -> InstrumentedSaver:
        if saver is None:  # copy.copy / pickle: the class is already the right variant
            return super().__new__(cls)
        names = frozenset(n for n in _OPTIONAL if _overridden(type(saver), n))
        variant = _VARIANTS.get(names)
        if variant is None:
            methods = {n: _Optional.__dict__[n] for n in names}
            variant = type("InstrumentedSaver", (InstrumentedSaver,), methods)
            _VARIANTS[names] = variant
        return super().__new__(variant)

    def __init__(self, saver: BaseCheckpointSaver[Any], metrics: AgentMetrics) -> None:
        # no super().__init__: the serializer is the wrapped saver's (see ``serde``)
        self.saver = saver
        self.metrics = metrics

    # ------------------------------------------------------------------ plumbing
    @property  # type: ignore[override]
    def serde(self) -> SerializerProtocol:
        return self.saver.serde

    @serde.setter
    def serde(self, value: SerializerProtocol) -> None:
        self.saver.serde = value

    @property
    def config_specs(self) -> list[Any]:
        return list(self.saver.config_specs)

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes not found on this class (setup, client, ...)
        if name == "saver":
            raise AttributeError(name)
        return getattr(self.saver, name)

    @contextmanager
    def _timed(self, operation: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.on_checkpoint_operation(
                operation=operation, duration_seconds=time.perf_counter() - started
            )

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.saver.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> InstrumentedSaver:
        inner = self.saver.with_allowlist(extra_allowlist)
        return self if inner is self.saver else InstrumentedSaver(inner, self.metrics)

    # ------------------------------------------------------------------ sync
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self._timed("get_tuple"):
            return self.saver.get_tuple(config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        # time only the wrapped saver's work, not the consumer's between items
        inner = self.saver.list(config, filter=filter, before=before, limit=limit)
        spent = 0.0
        try:
            while True:
                started = time.perf_counter()
                try:
                    item = next(inner)
                finally:
                    spent += time.perf_counter() - started
                yield item
        except StopIteration:
            return
        finally:
            self.metrics.on_checkpoint_operation(operation="list", duration_seconds=spent)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self._timed("put"):
            return self.saver.put(config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        with self._timed("put_writes"):
            self.saver.put_writes(config, writes, task_id, task_path)

    # ------------------------------------------------------------------ async
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self._timed("get_tuple"):
            return await self.saver.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        inner = self.saver.alist(config, filter=filter, before=before, limit=limit)
        spent = 0.0
        try:
            while True:
                started = time.perf_counter()
                try:
                    item = await anext(inner)
                finally:
                    spent += time.perf_counter() - started
                yield item
        except StopAsyncIteration:
            return
        finally:
            self.metrics.on_checkpoint_operation(operation="list", duration_seconds=spent)

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self._timed("put"):
            return await self.saver.aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        with self._timed("put_writes"):
            await self.saver.aput_writes(config, writes, task_id, task_path)


class _Optional(InstrumentedSaver):
    """The timed optional methods; a variant of :class:`InstrumentedSaver` takes those the
    wrapped saver has."""

    def delete_thread(self, thread_id: str) -> None:
        with self._timed("delete_thread"):
            self.saver.delete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        with self._timed("delete_for_runs"):
            self.saver.delete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._timed("copy_thread"):
            self.saver.copy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        with self._timed("prune"):
            self.saver.prune(thread_ids, strategy=strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        with self._timed("get_delta_channel_history"):
            return self.saver.get_delta_channel_history(config=config, channels=channels)

    async def adelete_thread(self, thread_id: str) -> None:
        with self._timed("delete_thread"):
            await self.saver.adelete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        with self._timed("delete_for_runs"):
            await self.saver.adelete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        with self._timed("copy_thread"):
            await self.saver.acopy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        with self._timed("prune"):
            await self.saver.aprune(thread_ids, strategy=strategy)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        with self._timed("get_delta_channel_history"):
            return await self.saver.aget_delta_channel_history(config=config, channels=channels)
