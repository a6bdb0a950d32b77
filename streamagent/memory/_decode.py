"""Decoding the read scripts' replies into LangGraph values (no I/O).

A read does not fetch the messages the saver holds decoded from the thread's previous read;
deserialized messages are cached by ref (:class:`~streamagent.memory.serde.DecodeCache`,
``message_cache_bytes``) and handed out as copies that share nothing with the cache. A
message a value names that is neither held, cached nor sent back is a
:class:`~streamagent.errors.CheckpointCorruptedError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, NamedTuple

import ormsgpack
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    writes_sort_key,
)

from streamagent._upstream.langgraph_private import DeltaSnapshot as _DeltaSnapshot
from streamagent.errors import CheckpointCorruptedError
from streamagent.memory._codec import REF_LEN, unpack
from streamagent.memory._core import ClientT, SaverCore, text
from streamagent.memory.serde import MessageTemplate

__all__ = ["Decoding", "ReadReply", "StoredMessages", "parse_read", "unpack_strings"]

_COUNT = struct.Struct(">I")


def unpack_strings(data: bytes) -> list[bytes | None]:
    """A list packed by the scripts' ``pack_strings``: its length, each string's length (-1
    for nil), then the strings.

    >>> unpack_strings(b"\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x02\\xff\\xff\\xff\\xffhi")
    [b'hi', None]
    """
    (count,) = _COUNT.unpack_from(data)
    pos = 4 + 4 * count
    out: list[bytes | None] = []
    for length in struct.unpack_from(f">{count}i", data, 4):
        if length < 0:
            out.append(None)
        else:
            out.append(data[pos : pos + length])
            pos += length
    return out


class ReadReply(NamedTuple):
    """A ``read.lua`` reply: ``status`` ("" when read), per target ``None`` or (id, record,
    channel entries, blobs, write fields, write values), the refs of the messages sent back
    (concatenated) and their values."""

    status: str
    results: list[tuple[Any, ...] | None]
    refs: str
    values: list[bytes | None]


def _read_target(items: Iterator[Any]) -> tuple[Any, ...] | None:
    if next(items) == b"0":
        return None
    checkpoint_id, record, entries = next(items), next(items), next(items)
    blobs = list(islice(items, int(next(items))))
    count = int(next(items))
    fields = list(islice(items, count))
    return checkpoint_id, record, entries, blobs, fields, list(islice(items, count))


def parse_read(reply: bytes, targets: int) -> ReadReply:
    """Unpack the reply of a ``read.lua`` call for ``targets`` (ns, id) pairs."""
    items = iter(unpack_strings(reply))
    status = text(next(items) or b"")
    if status:
        return ReadReply(status, [], "", [])
    results = [_read_target(items) for _ in range(targets)]
    return ReadReply("", results, text(next(items) or b""), list(items))


class StoredMessages:
    """The messages of one read reply plus the templates the read held back."""

    def __init__(
        self,
        refs: str,
        values: Sequence[bytes | None],
        held: Mapping[str, MessageTemplate],
        thread_id: str = "",
    ) -> None:
        self.thread_id = thread_id
        self._values = {
            refs[i * REF_LEN : (i + 1) * REF_LEN]: value
            for i, value in enumerate(values)
            if value is not None
        }
        self.held = held
        self.used: dict[str, None] = {}  # refs in list order (the next read's held string)

    def get(self, ref: str) -> bytes | None:
        """The stored value of ``ref`` the reply sent, if any."""
        return self._values.get(ref)


def _config(thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


class Decoding(SaverCore[ClientT]):
    """Reply decoding shared by ``get_tuple``, ``list`` and the delta history."""

    def held_messages(self, thread_id: str) -> dict[str, MessageTemplate]:
        """Decoded templates of the messages the last read of ``thread_id`` returned: a read
        skips fetching them (pinned here, so eviction cannot race the read)."""
        if not self._decoded.max_bytes:
            return {}
        refs = self._memory.last_read(thread_id)
        return self._decoded.templates(self.serde, refs) if refs else {}

    def decode_read(
        self,
        reply: bytes,
        thread_id: str,
        namespaces: Sequence[str],
        configs: Sequence[RunnableConfig | None],
        held: Mapping[str, MessageTemplate] | None = None,
    ) -> list[CheckpointTuple | None]:
        """Decode a ``read.lua`` reply into checkpoint tuples (``None`` where missing).

        ``configs[i]`` is returned as the tuple's config when given (``get_tuple`` with a
        checkpoint id returns the caller's config unchanged, like ``InMemorySaver``);
        ``held`` are the templates whose refs the read sent.
        """
        status, results, refs, values = parse_read(reply, len(namespaces))
        if status:
            return self.absent(status, thread_id, len(namespaces))
        messages = StoredMessages(refs, values, held or {}, thread_id)
        out: list[CheckpointTuple | None] = []
        for result, ns, config in zip(results, namespaces, configs, strict=True):
            out.append(
                self._decode_one(result, thread_id, ns, config, messages) if result else None
            )
        if any(item is not None for item in out):
            self.remember_thread(thread_id)
        if self._decoded.max_bytes and messages.used:
            self._memory.remember_read(thread_id, messages.used)
        return out

    def decode_history(
        self, reply: Sequence[Any], thread_id: str, channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        """``history.lua`` reply -> per-channel writes (oldest first) and seed."""
        status = text(reply[0])
        if status:
            self.absent(status, thread_id, 0)  # raises for damaged / expired threads
            return {ch: {"writes": []} for ch in channels}
        _, _, steps, refs, values = reply
        messages = StoredMessages(text(refs), values, {}, thread_id)
        writes: dict[str, list[PendingWrite]] = {ch: [] for ch in channels}
        seeds: dict[str, Any] = {}
        for _, fields, wvalues, chans, blobs in reversed(steps):
            for write in self._decode_writes(fields, wvalues, messages):
                if write[1] in writes:
                    writes[write[1]].append(write)
            for channel, packed in zip(chans, blobs, strict=True):
                seeds[text(channel)] = self._decode_value(packed, messages)
        out: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            entry: DeltaChannelHistory = {"writes": writes[ch]}
            if ch in seeds:
                entry["seed"] = seeds[ch]
            out[ch] = entry
        return out

    def run_id_of(self, record: bytes) -> str | None:
        """The ``run_id`` in the metadata of a stored checkpoint record."""
        _, _, md_type, md_data, _ = ormsgpack.unpackb(record)
        metadata = self.serde.loads_typed((md_type, md_data))
        run_id = metadata.get("run_id") if isinstance(metadata, Mapping) else None
        return None if run_id is None else str(run_id)

    # ------------------------------------------------------------------ values
    def _decode_one(
        self,
        result: Sequence[Any],
        thread_id: str,
        ns: str,
        config: RunnableConfig | None,
        messages: StoredMessages,
    ) -> CheckpointTuple:
        raw_id, record, refs, blob_values, write_fields, write_values = result
        checkpoint_id = text(raw_id)
        try:
            ck_type, ck_data, md_type, md_data, parent = ormsgpack.unpackb(record)
        except (ValueError, TypeError):
            raise CheckpointCorruptedError(
                thread_id, f"record of checkpoint {checkpoint_id} (unreadable)"
            ) from None
        checkpoint: Checkpoint = self.serde.loads_typed((ck_type, ck_data))
        channel_values: dict[str, Any] = {}
        entries = text(refs).split("\x01") if refs else []
        for entry, packed in zip(entries, blob_values, strict=True):
            if packed is None or packed.startswith(b"empty\x00"):
                continue
            channel_values[entry.partition("\x00")[0]] = self._decode_value(packed, messages)
        pending = self._decode_writes(write_fields, write_values, messages)
        return CheckpointTuple(
            config=config or _config(thread_id, ns, checkpoint_id),
            checkpoint={**checkpoint, "channel_values": channel_values},
            metadata=self.serde.loads_typed((md_type, md_data)),
            parent_config=_config(thread_id, ns, parent) if parent else None,
            pending_writes=pending,
        )

    def _decode_writes(
        self,
        fields: Sequence[bytes | str],
        values: Sequence[bytes | None],
        messages: StoredMessages,
    ) -> list[PendingWrite]:
        """Stored writes of one checkpoint, in ``writes_sort_key`` order."""
        pending: list[tuple[tuple[str, str, int], PendingWrite]] = []
        for field_, record_w in zip(fields, values, strict=True):
            if record_w is None:
                continue
            _, _, task_id, idx = text(field_).split("\x00")
            type_, channel, task_path, payload = record_w.split(b"\x00", 3)
            value = self._decode_value(type_ + b"\x00" + payload, messages)
            key = writes_sort_key(task_path.decode(), task_id, int(idx))
            pending.append((key, (task_id, channel.decode(), value)))
        pending.sort(key=lambda item: item[0])
        return [write for _, write in pending]

    def _decode_value(self, packed: bytes, messages: StoredMessages) -> Any:
        type_, payload = unpack(packed)
        if type_ == "R":
            return self._load_messages(payload, messages)
        if type_ == "S":
            return _DeltaSnapshot(self._load_messages(payload, messages))
        return self.serde.loads_typed((type_, payload))

    def _load_messages(self, payload: bytes, messages: StoredMessages) -> list[Any]:
        """The messages of a list of refs: copies of decoded templates (held by the read or
        cached), the others deserialized in one call and cached."""
        refs_text = payload.decode()
        serde, cache = self.serde, self._decoded
        refs = [refs_text[i : i + REF_LEN] for i in range(0, len(refs_text), REF_LEN)]
        messages.used.update(dict.fromkeys(refs))
        templates = messages.held
        if cache.max_bytes:
            others = [ref for ref in refs if ref not in templates]
            if others:
                templates = {**templates, **cache.templates(serde, others)}
        out: list[Any] = []
        missing: list[tuple[int, str, bytes]] = []
        for ref in refs:
            template = templates.get(ref)
            if template is not None:
                out.append(template.copy())
                continue
            packed = messages.get(ref)
            if packed is None:
                raise CheckpointCorruptedError(messages.thread_id, f"message {ref}")
            missing.append((len(out), ref, packed))
            out.append(None)
        if missing:
            decoded = self._loads_parts([unpack(packed) for _, _, packed in missing])
            for (pos, ref, packed), value in zip(missing, decoded, strict=True):
                if isinstance(value, BaseMessage) and cache.max_bytes:
                    # the decoded object becomes the template: only copies are handed out
                    out[pos] = cache.put(serde, ref, value, len(packed)).copy()
                else:
                    out[pos] = value
        return out

    def _loads_parts(self, parts: list[tuple[str, bytes]]) -> list[Any]:
        if len(parts) == 1:
            return [self.serde.loads_typed(parts[0])]
        if all(type_ == "msgpack" for type_, _ in parts):
            # one msgpack array of the stored items: a single deserializer call
            array = b"\xdd" + struct.pack(">I", len(parts)) + b"".join(p for _, p in parts)
            return list(self.serde.loads_typed(("msgpack", array)))
        return [self.serde.loads_typed(part) for part in parts]
