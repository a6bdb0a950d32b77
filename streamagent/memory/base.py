"""``BaseRedisSaver``: the savers' whole API, written once over a sans-I/O core.

Every operation is a generator in the no-I/O core (``_writes.py``, ``_reads.py``,
``_admin.py`` over ``_core.py``; the protocol is ``_protocol.py``) that yields the Redis
requests it needs and receives their replies. This class defines each public method, sync
and async, as "run that operation"; the shells only perform requests:

* :class:`RedisSaver <streamagent.memory.sync.RedisSaver>` runs operations with blocking
  I/O (its ``a``-methods in a worker thread);
* :class:`AsyncRedisSaver <streamagent.memory.aio.AsyncRedisSaver>` runs them with
  ``redis.asyncio`` (its sync methods from other threads, on its loop).

So the two make the same round trips for the same operation, in the same order, and differ
only in how a request reaches Redis (``tests/integration_tests/test_memory_round_trips.py``
counts them).
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)

from streamagent.memory._admin import AdminOps
from streamagent.memory._core import (
    EXPIRY_NOTICE_SECONDS,
    KNOWN_THREADS,
    MESSAGE_CACHE_BYTES,
    ClientT,
)
from streamagent.memory._protocol import Op
from streamagent.memory._setup import (
    SCHEMA_VERSION,
    Probe,
    check_eviction_mode,
    check_schema,
    migrate_args,
    one_node,
)
from streamagent.memory._writes import FENCE_KEY, FULL_EVERY, PutPlan, WritesPlan, fence_of
from streamagent.memory.keys import KEY_KINDS, thread_keys

__all__ = [
    "EXPIRY_NOTICE_SECONDS",
    "FENCE_KEY",
    "FULL_EVERY",
    "KEY_KINDS",
    "KNOWN_THREADS",
    "MESSAGE_CACHE_BYTES",
    "SCHEMA_VERSION",
    "BaseRedisSaver",
    "Probe",
    "PutPlan",
    "WritesPlan",
    "check_eviction_mode",
    "check_schema",
    "fence_of",
    "migrate_args",
    "one_node",
    "thread_keys",
]

T = TypeVar("T")


class BaseRedisSaver(AdminOps[ClientT]):
    """The checkpointer API over a Redis ``client``; subclasses perform the I/O.

    ``ttl_seconds`` applies to every key of a thread and is renewed on each write (and on
    reads with ``refresh_ttl_on_read``); ``keep_last`` keeps the newest N checkpoints per
    namespace (older subgraph checkpoints go with their root) and deletes the rest with
    their writes, blobs and messages, in the same atomic script. Deserialized messages are
    kept in a bounded cache by content digest (``message_cache_bytes`` of stored size, 0
    disables); reads return private copies. A thread's tombstone outlives its data by
    ``expiry_notice_seconds`` and a saver remembers ``known_threads`` threads, so an
    expired or lost thread raises :class:`~streamagent.errors.ThreadExpiredError`
    instead of reading as new. The constructor does no I/O; call ``setup()`` once.
    """

    # ------------------------------------------------------------------ the shells' part
    @abstractmethod
    def _drive(self, op: Op[T]) -> T:
        """Run ``op`` to its result (blocking)."""

    @abstractmethod
    def _iterate(self, op: Op[Any]) -> Iterator[Any]:
        """Run ``op``, yielding what it emits (blocking)."""

    @abstractmethod
    async def _adrive(self, op: Op[T]) -> T:
        """Run ``op`` to its result."""

    @abstractmethod
    def _aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:
        """Run ``op``, yielding what it emits."""

    # ------------------------------------------------------------------ setup
    def setup(self, *, eviction: str = "warn") -> None:
        """Check the server and record the schema version; see :mod:`._setup`.

        Says "TLS?" at once when a ``rediss://`` URL points at a plain port, refuses Redis
        older than 6.2, warns about (``eviction="warn"``), refuses (``"refuse"``) or ignores
        (``"ignore"``) a ``maxmemory-policy`` that can evict the saver's keys, and runs every
        command the saver uses on a probe thread: a missing ACL permission is a
        :class:`~streamagent.errors.ConfigurationError` naming it, not a failed first turn.
        """
        self._drive(self._setup_op(eviction=eviction))

    async def asetup(self, *, eviction: str = "warn") -> None:
        """Async :meth:`setup`."""
        await self._adrive(self._setup_op(eviction=eviction))

    # ------------------------------------------------------------------ reads
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of ``config`` (its ``checkpoint_id``, else the thread's head)."""
        return self._drive(self._get_tuple_op(config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async :meth:`get_tuple`."""
        return await self._adrive(self._get_tuple_op(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (threads sorted by id when ``config`` is None)."""
        return self._iterate(self._list_op(config, filter=filter, before=before, limit=limit))

    def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async :meth:`list`."""
        return self._aiterate(self._list_op(config, filter=filter, before=before, limit=limit))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of ``channels`` along the parent chain of ``config``'s checkpoint,
        in one script (LangGraph's ``DeltaChannel`` replays a thread from it)."""
        return self._drive(self._history_op(config, channels))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Async :meth:`get_delta_channel_history`."""
        return await self._adrive(self._history_op(config, channels))

    # ------------------------------------------------------------------ writes
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; raises :class:`MemoryUnavailable` if not stored."""
        return self._drive(self._put_op(config, checkpoint, metadata, new_versions))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async :meth:`put`."""
        return await self._adrive(self._put_op(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store pending writes of a task atomically."""
        self._drive(self._put_writes_op(config, writes, task_id, task_path))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async :meth:`put_writes`."""
        await self._adrive(self._put_writes_op(config, writes, task_id, task_path))

    # ------------------------------------------------------------------ deletion
    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's data (one script, one hash slot), leaving a short "deleted"
        tombstone so that no process reports it as expired."""
        self._drive(self._delete_thread_op(thread_id))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async :meth:`delete_thread`."""
        await self._adrive(self._delete_thread_op(thread_id))

    def delete_checkpoints(self, thread_id: str, fields: Sequence[str]) -> None:
        """Delete checkpoints (``"ns\\0id"`` fields) of a thread with their writes; heads
        move to the newest remaining checkpoint, unreferenced data is collected."""
        self._drive(self._delete_checkpoints_op(thread_id, fields))

    async def adelete_checkpoints(self, thread_id: str, fields: Sequence[str]) -> None:
        """Async :meth:`delete_checkpoints`."""
        await self._adrive(self._delete_checkpoints_op(thread_id, fields))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint whose metadata ``run_id`` is one of ``run_ids`` (with its
        writes), on every thread of this key prefix (a SCAN: a maintenance operation)."""
        self._drive(self._delete_for_runs_op(run_ids))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async :meth:`delete_for_runs`."""
        await self._adrive(self._delete_for_runs_op(run_ids))

    # ------------------------------------------------------------------ copy, prune
    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Make ``target_thread_id`` a copy of ``source_thread_id`` (every checkpoint, write,
        namespace and head; the target's previous data is replaced). One consistent snapshot
        of the source (``DUMP`` in one script), restored in one script."""
        self._drive(self._copy_thread_op(source_thread_id, target_thread_id))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async :meth:`copy_thread`."""
        await self._adrive(self._copy_thread_op(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: each namespace keeps only its head checkpoint (and its
        writes); ``"delete"``: the threads are deleted. See docs/memory.md for DeltaChannel."""
        self._drive(self._prune_op(thread_ids, strategy=strategy))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async :meth:`prune`."""
        await self._adrive(self._prune_op(thread_ids, strategy=strategy))

    # ------------------------------------------------------------------ turn lock
    def turn_lock_probe(self, thread_id: str) -> None:
        """Take and release the turn lock of ``thread_id`` once (setup's permission probe)."""
        self._drive(self._turn_lock_probe_op(thread_id))

    async def aturn_lock_probe(self, thread_id: str) -> None:
        """Async :meth:`turn_lock_probe`."""
        await self._adrive(self._turn_lock_probe_op(thread_id))

    # ------------------------------------------------------------------ versions
    def get_next_version(self, current: str | None, channel: None) -> str:
        """Same scheme as ``InMemorySaver``: zero-padded counter plus a random fraction, so
        two forks of one checkpoint never share a blob version."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"
