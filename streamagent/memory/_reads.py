"""The read operations of the savers, sans I/O: ``get_tuple``, ``list`` and the delta
channel history (each checkpoint read is one ``read.lua`` call; see ``_decode.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, DeltaChannelHistory, get_checkpoint_id

from streamagent.memory._core import ClientT, text
from streamagent.memory._decode import Decoding
from streamagent.memory._lua import HISTORY, READ
from streamagent.memory._protocol import Batch, Emit, Op, Scan
from streamagent.memory.keys import thread_of_index_key
from streamagent.memory.serde import MessageTemplate

__all__ = ["LIST_BATCH", "ReadOps", "list_targets"]

#: checkpoints one ``read.lua`` call of ``list`` returns at most
LIST_BATCH = 32


def list_targets(
    namespaces_in_order: Sequence[bytes | str],
    members: Sequence[bytes | str],
    config: RunnableConfig | None,
    before: RunnableConfig | None,
) -> list[tuple[str, str]]:
    """``(ns, id)`` pairs to list, in ``InMemorySaver`` order (namespaces by first use,
    newest checkpoint first), filtered by the config's namespace/id and ``before``.

    >>> list_targets(["", "sub"], ["\\x00a1", "\\x00a2", "sub\\x00a3"], None, None)
    [('', 'a2'), ('', 'a1'), ('sub', 'a3')]
    """
    by_ns: dict[str, list[str]] = {}
    for member in members:
        ns, _, checkpoint_id = text(member).partition("\x00")
        by_ns.setdefault(ns, []).append(checkpoint_id)
    wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
    wanted_id = get_checkpoint_id(config) if config else None
    before_id = get_checkpoint_id(before) if before else None
    out: list[tuple[str, str]] = []
    for raw_ns in namespaces_in_order:
        ns = text(raw_ns)
        if wanted_ns is not None and ns != wanted_ns:
            continue
        for checkpoint_id in sorted(by_ns.get(ns, ()), reverse=True):
            if wanted_id and checkpoint_id != wanted_id:
                continue
            if before_id and checkpoint_id >= before_id:
                continue
            out.append((ns, checkpoint_id))
    return out


def _batches(targets: Sequence[tuple[str, str]]) -> Iterator[Sequence[tuple[str, str]]]:
    for start in range(0, len(targets), LIST_BATCH):
        yield targets[start : start + LIST_BATCH]


def _matches(item: CheckpointTuple, filter: Mapping[str, Any] | None) -> bool:
    """Metadata filter with ``InMemorySaver`` semantics (equality of every key)."""
    if not filter:
        return True
    metadata: Mapping[str, Any] = item.metadata
    return all(metadata.get(key) == value for key, value in filter.items())


class ReadOps(Decoding[ClientT]):
    """``get_tuple``, ``list``, ``get_delta_channel_history`` and the thread SCAN."""

    def read_args(
        self, targets: Sequence[tuple[str, str]], held: Mapping[str, MessageTemplate] | None = None
    ) -> list[Any]:
        """``read.lua`` arguments for ``(ns, checkpoint_id or "")`` pairs; the messages
        ``held`` (see :meth:`held_messages`) are not sent back."""
        ttl = self._ttl if self.refresh_ttl_on_read else 0
        out: list[Any] = [ttl, self.expiry_notice_seconds, "".join(held) if held else ""]
        for ns, checkpoint_id in targets:
            out += [ns, checkpoint_id]
        return out

    def _read_reply_op(self, thread_id: str, args: list[Any]) -> Op[Any]:
        """The raw ``read.lua`` reply for ``args`` (see :meth:`read_args`)."""
        return (yield from self._script(READ, thread_id, args, "read"))

    def _read_op(
        self,
        thread_id: str,
        targets: Sequence[tuple[str, str]],
        configs: Sequence[RunnableConfig | None],
    ) -> Op[list[CheckpointTuple | None]]:
        held = self.held_messages(thread_id)
        reply = yield from self._read_reply_op(thread_id, self.read_args(targets, held))
        return self.decode_read(reply, thread_id, [ns for ns, _ in targets], configs, held)

    def _get_tuple_op(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        configurable = config["configurable"]
        checkpoint_id = configurable.get("checkpoint_id")
        target = (configurable.get("checkpoint_ns", ""), checkpoint_id or "")
        thread_id = str(configurable["thread_id"])
        found = yield from self._read_op(thread_id, [target], [config if checkpoint_id else None])
        return found[0]

    def _thread_ids_op(self, config: RunnableConfig | None, operation: str) -> Op[list[str]]:
        """The thread of ``config``, or every thread of this key prefix (a SCAN)."""
        if config is not None:
            return [str(config["configurable"]["thread_id"])]
        keys = yield from self._call(Scan(self.index_match(), 1000), operation)
        return sorted({thread_of_index_key(self.key_prefix, key) for key in keys})

    def _list_op(
        self,
        config: RunnableConfig | None,
        *,
        filter: Mapping[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Op[None]:
        """Emits checkpoints newest first (threads sorted by id when ``config`` is None);
        a thread's namespaces and checkpoint ids come in one round trip."""
        remaining = limit
        for thread_id in (yield from self._thread_ids_op(config, "list")):
            keys = self.keys_for(thread_id)
            ranges = Batch((("ZRANGE", keys.ns, 0, -1), ("ZRANGE", keys.idx, 0, -1)))
            namespaces, members = yield from self._call(ranges, "list")
            for batch in _batches(list_targets(namespaces, members, config, before)):
                for item in (yield from self._read_op(thread_id, batch, [None] * len(batch))):
                    if item is None or not _matches(item, filter):
                        continue
                    if remaining is not None:
                        if remaining <= 0:
                            return
                        remaining -= 1
                    yield Emit(item)

    def _history_op(
        self, config: RunnableConfig, channels: Sequence[str]
    ) -> Op[Mapping[str, DeltaChannelHistory]]:
        """Writes and seed of ``channels`` along the parent chain of ``config``'s
        checkpoint, in one script."""
        if not channels:
            return {}
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        args = [configurable.get("checkpoint_ns", ""), get_checkpoint_id(config) or "", *channels]
        reply = yield from self._script(HISTORY, thread_id, args, "get_delta_channel_history")
        return self.decode_history(reply, thread_id, channels)
