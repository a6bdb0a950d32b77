"""Pure logic of the Redis savers: keys, encodings, message dedup, reply decoding (no I/O).

Layout: all keys of a thread share the hash tag ``{prefix:thread_id}`` (see ``_lua.py`` for the
eight keys). Each message of a list-of-messages value (the ``messages`` channel and the writes
to it) is stored once, in the thread's ``msgs`` hash under a 24-hex-char BLAKE2b digest of its
serialized form (which includes the message id); the value itself stores only the refs. When a
new version of a channel extends the previous version this process wrote, only the appended
refs are stored (a ``D`` value pointing at the base version, a full ``R`` value every
:data:`FULL_EVERY` versions), so a thread's storage grows linearly with its messages.

Fast paths (each falls back to the plain one, never to a weaker check): a put does not send or
check the messages of the channel's previous list while that list's blob still exists (the
script checks it); a read does not fetch the messages the saver holds decoded from the
thread's previous read, and deserialized messages are cached by ref
(:class:`~streamagent.memory.serde.DecodeCache`, ``message_cache_bytes``) and handed out as
copies that share nothing with the cache.
:class:`RedisSaver <streamagent.memory.sync.RedisSaver>` and
:class:`AsyncRedisSaver <streamagent.memory.aio.AsyncRedisSaver>` are thin I/O shells over
:class:`BaseRedisSaver`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    empty_checkpoint,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from streamagent._upstream.langgraph_private import DeltaSnapshot as _DeltaSnapshot
from streamagent.errors import (
    CheckpointCorruptedError,
    ConfigurationError,
    MemoryUnavailable,
    ThreadExpiredError,
    TurnFencedError,
)
from streamagent.memory._errors import memory_error
from streamagent.memory._setup import EVICTION_CHOICES
from streamagent.memory.serde import (
    DecodeCache,
    EncodeCache,
    MessageTemplate,
    StrictSerializer,
)

__all__ = [
    "EXPIRY_NOTICE_SECONDS",
    "Probe",
    "check_eviction_mode",
    "check_schema",
    "migrate_args",
    "one_node",
    "FENCE_KEY",
    "FULL_EVERY",
    "KEY_KINDS",
    "KNOWN_THREADS",
    "MESSAGE_CACHE_BYTES",
    "SCHEMA_VERSION",
    "BaseRedisSaver",
    "PutPlan",
    "WritesPlan",
    "thread_keys",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "2"
KEY_KINDS = ("cp", "refs", "idx", "blobs", "msgs", "w", "wi", "ns", "head", "seen", "turn")
#: how long a thread's tombstone outlives its data (ThreadExpiredError instead of silence)
EXPIRY_NOTICE_SECONDS = 7 * 24 * 3600
#: threads a saver remembers having seen (reports a thread lost by a flush as expired)
KNOWN_THREADS = 65536
#: ``configurable`` key of the fencing token of the turn a run belongs to (see ``turns``)
FENCE_KEY = "__streamagent_fence"
FULL_EVERY = 32
LIST_BATCH = 32
_REF_LEN = 24
_DELTA_CACHE_SIZE = 4096
_STORED_THREADS = 1024
MESSAGE_CACHE_BYTES = 32 * 1024 * 1024


def thread_keys(prefix: str, thread_id: str) -> list[str]:
    """The eleven keys of one thread, in the order the Lua scripts expect.

    >>> thread_keys("sa", "t1")[:2]
    ['{sa:t1}:cp', '{sa:t1}:refs']
    """
    return [f"{{{prefix}:{thread_id}}}:{kind}" for kind in KEY_KINDS]


def _check_name(kind: str, value: str) -> str:
    if "\x00" in value or "\x01" in value or "\x02" in value:
        raise ValueError(f"{kind} must not contain NUL, \\x01 or \\x02 characters: {value!r}")
    return value


def _pack(type_: str, payload: bytes) -> bytes:
    return type_.encode() + b"\x00" + payload


def _unpack(value: bytes) -> tuple[str, bytes]:
    type_, _, payload = value.partition(b"\x00")
    return type_.decode(), payload


def _is_message_list(value: Any) -> bool:
    return type(value) is list and bool(value) and all(isinstance(m, BaseMessage) for m in value)


@dataclass
class _Messages:
    """Messages of one write operation: refs with the values to store."""

    cache: EncodeCache
    values: dict[str, bytes] = field(default_factory=dict)

    def encode(self, serde: SerializerProtocol, messages: list[BaseMessage]) -> list[str]:
        refs = []
        for message, hit in zip(messages, self.cache.get_many(messages), strict=True):
            if hit is None:
                type_, data = serde.dumps_typed(message)
                packed = _pack(type_, data)
                ref = hashlib.blake2b(packed, digest_size=_REF_LEN // 2).hexdigest()
                self.cache.put(message, ref, packed)
            else:
                ref, packed = hit
            self.values[ref] = packed
            refs.append(ref)
        return refs


@dataclass
class PutPlan:
    """Arguments of one ``PUT_SCRIPT`` call; ``args(full=True)`` drops every shortcut.

    ``bases`` are blobs that must still exist for the shortcuts to hold: the base of each
    delta value and the previous list of each channel (its *witness*). A stored blob's
    messages are stored (they are deleted only with the last blob or write referencing them,
    and every key of a thread expires together), so the refs of ``covered`` lists are
    neither sent nor checked one by one; other refs this process stored (``known``) are
    checked, the rest are sent.
    """

    keys: list[str]
    head: list[Any]
    blobs: list[tuple[str, bytes]]
    full_blobs: list[tuple[str, bytes]]
    messages: dict[str, bytes]
    bases: list[str]
    cache_updates: list[tuple[tuple[str, str, str], tuple[str, tuple[str, ...], int]]]
    known: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)

    def args(self, *, full: bool = False) -> list[Any]:
        blobs = self.full_blobs if full else self.blobs
        bases = [] if full else self.bases
        skip = set() if full else self.known | self.covered
        check = [] if full else [ref for ref in self.known if ref not in self.covered]
        sent = [(r, v) for r, v in self.messages.items() if r not in skip]
        out: list[Any] = [*self.head, len(blobs), len(sent), len(check), len(bases)]
        for suffix, value in blobs:
            out += [suffix, value]
        for ref, value in sent:
            out += [ref, value]
        return out + check + bases


@dataclass
class WritesPlan:
    """Arguments of one ``PUT_WRITES_SCRIPT`` call."""

    keys: list[str]
    head: list[Any]
    writes: list[tuple[str, str, bytes]]
    messages: dict[str, bytes]
    known: set[str] = field(default_factory=set)

    def args(self, *, full: bool = False) -> list[Any]:
        known = set() if full else self.known
        sent = [(r, v) for r, v in self.messages.items() if r not in known]
        out: list[Any] = [*self.head, len(self.writes), len(sent), len(known)]
        for mode, field_, value in self.writes:
            out += [mode, field_, value]
        for ref, value in sent:
            out += [ref, value]
        return out + list(known)


class BaseRedisSaver(BaseCheckpointSaver[str]):
    """Options, encodings and decoding shared by the sync and async savers (no I/O)."""

    _where = "?"  # host:port, set by the I/O shells
    _tls = False
    _acquire: Any  # the turn-lock scripts, registered by the I/O shells (see turns.py)
    _release: Any

    def __init__(
        self,
        *,
        key_prefix: str = "streamagent",
        ttl_seconds: int | None = None,
        refresh_ttl_on_read: bool = False,
        keep_last: int | None = None,
        serde: SerializerProtocol | None = None,
        message_cache_bytes: int = MESSAGE_CACHE_BYTES,
        expiry_notice_seconds: int = EXPIRY_NOTICE_SECONDS,
        known_threads: int = KNOWN_THREADS,
    ) -> None:
        super().__init__(serde=serde or StrictSerializer())
        if expiry_notice_seconds < 0 or known_threads < 0:
            raise ConfigurationError(
                "expiry_notice_seconds and known_threads must be >= 0 (0 disables), got "
                f"{expiry_notice_seconds} and {known_threads}"
            )
        if not key_prefix or any(c in key_prefix for c in "{}\x00*?[]"):
            raise ConfigurationError(f"invalid key_prefix {key_prefix!r}")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ConfigurationError(f"ttl_seconds must be positive or None, got {ttl_seconds}")
        if keep_last is not None and keep_last < 1:
            raise ConfigurationError(f"keep_last must be >= 1 or None, got {keep_last}")
        if message_cache_bytes < 0:
            raise ConfigurationError(
                f"message_cache_bytes must be >= 0 (0 disables), got {message_cache_bytes}"
            )
        self.key_prefix = key_prefix
        self.ttl_seconds = ttl_seconds
        self.refresh_ttl_on_read = refresh_ttl_on_read
        self.keep_last = keep_last
        self.expiry_notice_seconds = expiry_notice_seconds
        self.known_threads = known_threads if expiry_notice_seconds else 0
        # thread -> monotonic time this process last saw it stored (see ``absent``)
        self._known: OrderedDict[str, float] = OrderedDict()
        # (thread, ns, channel) -> (version, refs, depth) of the last list this process wrote
        self._last_lists: OrderedDict[tuple[str, str, str], tuple[str, tuple[str, ...], int]] = (
            OrderedDict()
        )
        # thread -> refs of messages this process knows are stored (verified by the scripts)
        self._stored: OrderedDict[str, set[str]] = OrderedDict()
        self._encoded = EncodeCache()
        # ref -> deserialized message template (reads hand out copies)
        self._decoded = DecodeCache(message_cache_bytes)
        # thread -> refs of the messages its last read returned
        self._last_read: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ keys
    def schema_key(self) -> str:
        """The key recording the storage schema version (written by ``setup``)."""
        return f"{self.key_prefix}:schema"

    def keys_for(self, thread_id: str) -> list[str]:
        """The keys of ``thread_id`` (all in one hash slot)."""
        return thread_keys(self.key_prefix, str(thread_id))

    def data_keys(self, thread_id: str) -> list[str]:
        """The keys holding the thread's data (not its tombstone or turn lock)."""
        return self.keys_for(thread_id)[:9]

    def index_match(self) -> str:
        """SCAN pattern matching the index key of every thread under this prefix."""
        return f"{{{self.key_prefix}:*}}:idx"

    def thread_of_index_key(self, key: bytes | str) -> str:
        """Inverse of the ``idx`` key name."""
        text = key.decode() if isinstance(key, bytes) else key
        return text[len(self.key_prefix) + 2 : -len("}:idx")]

    @property
    def _ttl(self) -> int:
        return self.ttl_seconds or 0

    def read_args(
        self, targets: Sequence[tuple[str, str]], held: Mapping[str, MessageTemplate] | None = None
    ) -> list[Any]:
        """``READ_SCRIPT`` arguments for ``(ns, checkpoint_id or "")`` pairs; the messages
        ``held`` (see :meth:`held_messages`) are not sent back."""
        ttl = self._ttl if self.refresh_ttl_on_read else 0
        out: list[Any] = [ttl, self.expiry_notice_seconds, "".join(held) if held else ""]
        for ns, checkpoint_id in targets:
            out += [ns, checkpoint_id]
        return out

    def held_messages(self, thread_id: str) -> dict[str, MessageTemplate]:
        """Decoded templates of the messages the last read of ``thread_id`` returned: a read
        skips fetching them (pinned here, so eviction cannot race the read)."""
        if not self._decoded.max_bytes:
            return {}
        with self._lock:
            refs = self._last_read.get(thread_id)
        return self._decoded.templates(self.serde, refs) if refs else {}

    def _fail(self, operation: str, exc: BaseException) -> MemoryUnavailable:
        return memory_error(self._where, operation, exc, tls=self._tls)

    # ------------------------------------------------------------------ integrity
    def remember_thread(self, thread_id: str) -> None:
        """Note that ``thread_id`` is stored (a later read that finds it gone says so)."""
        if not self.known_threads:
            return
        with self._lock:
            self._known[thread_id] = time.monotonic()
            self._known.move_to_end(thread_id)
            while len(self._known) > self.known_threads:
                self._known.popitem(last=False)

    def _knew(self, thread_id: str) -> bool:
        with self._lock:
            seen = self._known.pop(thread_id, None)
        if seen is None:
            return False
        window = (self.ttl_seconds or 0) + self.expiry_notice_seconds
        return time.monotonic() - seen <= window

    def absent(self, status: str, thread_id: str, count: int) -> list[CheckpointTuple | None]:
        """A script's verdict other than "intact": raises :class:`CheckpointCorruptedError`
        (``C<piece>``) or, for a thread with no data (``A<tombstone>``),
        :class:`ThreadExpiredError` when it is known to have existed, else ``count`` Nones."""
        if status.startswith("C"):
            raise CheckpointCorruptedError(thread_id, status[1:])
        tombstone = status[1:]
        if tombstone == "1":
            self.forget_thread(thread_id)
            raise ThreadExpiredError(thread_id, "expired")
        if tombstone != "0" and self._knew(thread_id):
            self.forget_thread(thread_id)
            raise ThreadExpiredError(thread_id, "lost")
        self.forget_thread(thread_id)
        return [None] * count

    def check_write(self, reply: Any, thread_id: str) -> bool:
        """A write script's reply: True when stored, False when its shortcuts failed (send
        everything); raises for a damaged thread or a fenced-out turn."""
        if reply == 1:
            return True
        if reply == 0:
            return False
        status = _text(reply)
        if status == "F":
            raise TurnFencedError(thread_id)
        raise CheckpointCorruptedError(thread_id, status[1:])

    # ------------------------------------------------------------------ put
    def plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[PutPlan, RunnableConfig]:
        """Serialize a checkpoint into script arguments and the config ``put`` returns."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = _check_name("checkpoint_ns", configurable.get("checkpoint_ns", ""))
        stored = checkpoint.copy()
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        record = ormsgpack.packb(
            [
                *self.serde.dumps_typed(stored),
                *self.serde.dumps_typed(get_checkpoint_metadata(config, metadata)),
                configurable.get("checkpoint_id"),
            ]
        )
        parent = _check_name("checkpoint_id", str(configurable.get("checkpoint_id") or ""))
        refs = f"{parent}\x02" + "\x01".join(
            f"{_check_name('channel', ch)}\x00{ver}"
            for ch, ver in checkpoint["channel_versions"].items()
        )
        messages = _Messages(self._encoded)
        plan = PutPlan(
            keys=self.keys_for(thread_id),
            head=[
                self._ttl,
                self.expiry_notice_seconds,
                self.keep_last or 0,
                fence_of(config),
                ns,
                _check_name("checkpoint_id", checkpoint["id"]),
                record,
                refs,
            ],
            blobs=[],
            full_blobs=[],
            messages=messages.values,
            bases=[],
            cache_updates=[],
        )
        for channel, version in new_versions.items():
            suffix = f"{channel}\x00{version}"
            if channel not in values:
                plan.blobs.append((suffix, _pack("empty", b"")))
                plan.full_blobs.append(plan.blobs[-1])
                continue
            value = values[channel]
            if isinstance(value, _DeltaSnapshot) and _is_message_list(value.value):
                # a DeltaChannel snapshot of messages: refs, like a list (stored once each)
                snap = _pack("S", "".join(messages.encode(self.serde, value.value)).encode())
                plan.blobs.append((suffix, snap))
                plan.full_blobs.append((suffix, snap))
                continue
            if not _is_message_list(value):
                packed = _pack(*self.serde.dumps_typed(value))
                plan.blobs.append((suffix, packed))
                plan.full_blobs.append((suffix, packed))
                continue
            list_refs = tuple(messages.encode(self.serde, value))
            full = _pack("R", "".join(list_refs).encode())
            plan.full_blobs.append((suffix, full))
            key = (thread_id, ns, channel)
            with self._lock:
                last = self._last_lists.get(key)
            delta = self._delta(last, list_refs)
            if delta is None:
                plan.blobs.append((suffix, full))
                depth = 0
            else:
                base_version, added, depth = delta
                plan.blobs.append((suffix, _pack("D", f"{base_version}\x00{added}".encode())))
            if last is not None:  # delta base or witness: its messages need no check
                plan.bases.append(f"{channel}\x00{last[0]}")
                plan.covered.update(last[1])
            plan.cache_updates.append((key, (str(version), list_refs, depth)))
        plan.known = self._known_refs(plan.keys[0], plan.messages)
        returned: RunnableConfig = {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return plan, returned

    def _delta(
        self, last: tuple[str, tuple[str, ...], int] | None, refs: tuple[str, ...]
    ) -> tuple[str, str, int] | None:
        if self.keep_last is not None or last is None:
            return None
        version, base, depth = last
        if depth + 1 >= FULL_EVERY or len(refs) <= len(base) or refs[: len(base)] != base:
            return None
        return version, "".join(refs[len(base) :]), depth + 1

    def _known_refs(self, thread_id: str, messages: Mapping[str, bytes]) -> set[str]:
        with self._lock:
            stored = self._stored.get(thread_id)
            return {ref for ref in messages if ref in stored} if stored else set()

    def remember_stored(self, thread_id: str, refs: Iterable[str]) -> None:
        """Record message refs a successful write stored (not sent again, only checked)."""
        with self._lock:
            stored = self._stored.setdefault(thread_id, set())
            stored.update(refs)
            self._stored.move_to_end(thread_id)
            while len(self._stored) > _STORED_THREADS:
                self._stored.popitem(last=False)

    def remember_put(self, plan: PutPlan, *, full: bool) -> None:
        """Record the lists a successful put stored, as bases for later deltas."""
        self.remember_stored(plan.keys[0], plan.messages)
        with self._lock:
            for key, (version, refs, depth) in plan.cache_updates:
                self._last_lists[key] = (version, refs, 0 if full else depth)
                self._last_lists.move_to_end(key)
            while len(self._last_lists) > _DELTA_CACHE_SIZE:
                self._last_lists.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        """Drop cached delta bases of a deleted thread."""
        with self._lock:
            for key in [k for k in self._last_lists if k[0] == thread_id]:
                del self._last_lists[key]
            self._stored.pop(self.keys_for(thread_id)[0], None)
            self._last_read.pop(thread_id, None)
            self._known.pop(thread_id, None)

    # ------------------------------------------------------------------ writes
    def plan_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> WritesPlan:
        """Serialize pending writes (special writes overwrite, regular ones never do)."""
        configurable = config["configurable"]
        ns = _check_name("checkpoint_ns", configurable.get("checkpoint_ns", ""))
        prefix = f"{ns}\x00{configurable['checkpoint_id']}\x00{_check_name('task_id', task_id)}"
        messages = _Messages(self._encoded)
        planned: list[tuple[str, str, bytes]] = []
        head = f"\x00{_check_name('task_path', task_path)}\x00"
        for idx, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, idx)
            if _is_message_list(value):
                type_, payload = "R", "".join(messages.encode(self.serde, value)).encode()
            else:
                type_, payload = self.serde.dumps_typed(value)
            record = (
                type_.encode()
                + b"\x00"
                + _check_name("channel", channel).encode()
                + head.encode()
                + payload
            )
            planned.append(("1" if write_idx < 0 else "0", f"{prefix}\x00{write_idx}", record))
        keys = self.keys_for(str(configurable["thread_id"]))
        return WritesPlan(
            keys=keys,
            head=[self._ttl, self.expiry_notice_seconds, fence_of(config)],
            writes=planned,
            messages=messages.values,
            known=self._known_refs(keys[0], messages.values),
        )

    # ------------------------------------------------------------------ reads
    def decode_read(
        self,
        reply: Sequence[Any],
        thread_id: str,
        namespaces: Sequence[str],
        configs: Sequence[RunnableConfig | None],
        held: Mapping[str, MessageTemplate] | None = None,
    ) -> list[CheckpointTuple | None]:
        """Decode a ``READ_SCRIPT`` reply into checkpoint tuples (``None`` where missing).

        ``configs[i]`` is returned as the tuple's config when given (``get_tuple`` with a
        checkpoint id returns the caller's config unchanged, like ``InMemorySaver``);
        ``held`` are the templates passed to :meth:`read_args`.
        """
        status = _text(reply[0])
        if status:
            return self.absent(status, thread_id, len(namespaces))
        _, results, refs, values = reply
        messages = _StoredMessages(_text(refs), values, held or {}, thread_id)
        out: list[CheckpointTuple | None] = []
        for result, ns, config in zip(results, namespaces, configs, strict=True):
            out.append(
                self._decode_one(result, thread_id, ns, config, messages) if result else None
            )
        if any(item is not None for item in out):
            self.remember_thread(thread_id)
        if self._decoded.max_bytes and messages.used:
            with self._lock:
                self._last_read[thread_id] = tuple(messages.used)
                self._last_read.move_to_end(thread_id)
                while len(self._last_read) > _STORED_THREADS:
                    self._last_read.popitem(last=False)
        return out

    def _decode_value(self, packed: bytes, messages: _StoredMessages) -> Any:
        type_, payload = _unpack(packed)
        if type_ == "R":
            return self._load_messages(payload, messages)
        if type_ == "S":
            return _DeltaSnapshot(self._load_messages(payload, messages))
        return self.serde.loads_typed((type_, payload))

    def _load_messages(self, payload: bytes, messages: _StoredMessages) -> list[Any]:
        """The messages of a list of refs: copies of decoded templates (held by the read or
        cached), the others deserialized in one call and cached."""
        text = payload.decode()
        serde, cache = self.serde, self._decoded
        refs = [text[i : i + _REF_LEN] for i in range(0, len(text), _REF_LEN)]
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
            decoded = self._loads_parts([_unpack(packed) for _, _, packed in missing])
            for (pos, ref, packed), value in zip(missing, decoded, strict=True):
                if isinstance(value, BaseMessage) and cache.max_bytes:
                    # the decoded object becomes the template: only copies are handed out
                    out[pos] = cache.put(serde, ref, value, len(packed)).copy()
                else:
                    out[pos] = value
        return out

    def _loads_parts(self, parts: list[tuple[str, bytes]]) -> list[Any]:
        if all(type_ == "msgpack" for type_, _ in parts):
            # one msgpack array of the stored items: a single deserializer call
            array = b"\xdd" + struct.pack(">I", len(parts)) + b"".join(p for _, p in parts)
            return list(self.serde.loads_typed(("msgpack", array)))
        return [self.serde.loads_typed(part) for part in parts]

    def _decode_one(
        self,
        result: Sequence[Any],
        thread_id: str,
        ns: str,
        config: RunnableConfig | None,
        messages: _StoredMessages,
    ) -> CheckpointTuple:
        raw_id, record, refs, blob_values, write_fields, write_values = result
        checkpoint_id = _text(raw_id)
        try:
            ck_type, ck_data, md_type, md_data, parent = ormsgpack.unpackb(record)
        except (ValueError, TypeError):
            raise CheckpointCorruptedError(
                thread_id, f"record of checkpoint {checkpoint_id} (unreadable)"
            ) from None
        checkpoint: Checkpoint = self.serde.loads_typed((ck_type, ck_data))
        channel_values: dict[str, Any] = {}
        entries = _text(refs).split("\x01") if refs else []
        for entry, packed in zip(entries, blob_values, strict=True):
            if packed is None or packed.startswith(b"empty\x00"):
                continue
            channel_values[entry.partition("\x00")[0]] = self._decode_value(packed, messages)
        pending = self._decode_writes(write_fields, write_values, messages)
        own: RunnableConfig = config or {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        parent_config: RunnableConfig | None = None
        if parent:
            parent_config = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": parent,
                }
            }
        return CheckpointTuple(
            config=own,
            checkpoint={**checkpoint, "channel_values": channel_values},
            metadata=self.serde.loads_typed((md_type, md_data)),
            parent_config=parent_config,
            pending_writes=pending,
        )

    def _decode_writes(
        self,
        fields: Sequence[bytes | str],
        values: Sequence[bytes | None],
        messages: _StoredMessages,
    ) -> list[PendingWrite]:
        """Stored writes of one checkpoint, in ``writes_sort_key`` order."""
        pending: list[tuple[tuple[str, str, int], PendingWrite]] = []
        for field_, record_w in zip(fields, values, strict=True):
            if record_w is None:
                continue
            _, _, task_id, idx = _text(field_).split("\x00")
            type_, channel, task_path, payload = record_w.split(b"\x00", 3)
            value = self._decode_value(type_ + b"\x00" + payload, messages)
            key = writes_sort_key(task_path.decode(), task_id, int(idx))
            pending.append((key, (task_id, channel.decode(), value)))
        pending.sort(key=lambda item: item[0])
        return [write for _, write in pending]

    # ------------------------------------------------------------------ extended contract
    def run_id_of(self, record: bytes) -> str | None:
        """The ``run_id`` in the metadata of a stored checkpoint record."""
        _, _, md_type, md_data, _ = ormsgpack.unpackb(record)
        metadata = self.serde.loads_typed((md_type, md_data))
        run_id = metadata.get("run_id") if isinstance(metadata, Mapping) else None
        return None if run_id is None else str(run_id)

    def history_target(self, config: RunnableConfig) -> tuple[str, list[str]]:
        """Thread id and ``HISTORY_SCRIPT`` arguments (ns, id) of ``config``."""
        configurable = config["configurable"]
        ns = configurable.get("checkpoint_ns", "")
        return str(configurable["thread_id"]), [ns, get_checkpoint_id(config) or ""]

    def decode_history(
        self, reply: Sequence[Any], thread_id: str, channels: Sequence[str]
    ) -> dict[str, DeltaChannelHistory]:
        """``HISTORY_SCRIPT`` reply -> per-channel writes (oldest first) and seed."""
        status = _text(reply[0])
        if status:
            self.absent(status, thread_id, 0)  # raises for damaged / expired threads
            return {ch: {"writes": []} for ch in channels}
        _, _, steps, refs, values = reply
        messages = _StoredMessages(_text(refs), values, {}, thread_id)
        writes: dict[str, list[PendingWrite]] = {ch: [] for ch in channels}
        seeds: dict[str, Any] = {}
        for _, fields, wvalues, chans, blobs in reversed(steps):
            for write in self._decode_writes(fields, wvalues, messages):
                if write[1] in writes:
                    writes[write[1]].append(write)
            for channel, packed in zip(chans, blobs, strict=True):
                seeds[_text(channel)] = self._decode_value(packed, messages)
        out: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            entry: DeltaChannelHistory = {"writes": writes[ch]}
            if ch in seeds:
                entry["seed"] = seeds[ch]
            out[ch] = entry
        return out

    # ------------------------------------------------------------------ list
    def list_targets(
        self,
        namespaces_in_order: Sequence[bytes | str],
        members: Sequence[bytes | str],
        config: RunnableConfig | None,
        before: RunnableConfig | None,
    ) -> list[tuple[str, str]]:
        """``(ns, id)`` pairs to list, in ``InMemorySaver`` order (namespaces by first use,
        newest checkpoint first), filtered by the config's namespace/id and ``before``."""
        by_ns: dict[str, list[str]] = {}
        for member in members:
            ns, _, checkpoint_id = _text(member).partition("\x00")
            by_ns.setdefault(ns, []).append(checkpoint_id)
        wanted_ns = config["configurable"].get("checkpoint_ns") if config else None
        wanted_id = get_checkpoint_id(config) if config else None
        before_id = get_checkpoint_id(before) if before else None
        out: list[tuple[str, str]] = []
        for raw_ns in namespaces_in_order:
            ns = _text(raw_ns)
            if wanted_ns is not None and ns != wanted_ns:
                continue
            for checkpoint_id in sorted(by_ns.get(ns, ()), reverse=True):
                if wanted_id and checkpoint_id != wanted_id:
                    continue
                if before_id and checkpoint_id >= before_id:
                    continue
                out.append((ns, checkpoint_id))
        return out

    @staticmethod
    def batches(targets: Sequence[tuple[str, str]]) -> Iterator[Sequence[tuple[str, str]]]:
        """Split list targets into script-sized batches."""
        for start in range(0, len(targets), LIST_BATCH):
            yield targets[start : start + LIST_BATCH]

    @staticmethod
    def matches(item: CheckpointTuple, filter: Mapping[str, Any] | None) -> bool:
        """Metadata filter with ``InMemorySaver`` semantics (equality of every key)."""
        if not filter:
            return True
        metadata: Mapping[str, Any] = item.metadata
        return all(metadata.get(key) == value for key, value in filter.items())

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


class _StoredMessages:
    """The messages of one ``READ_SCRIPT`` reply plus the templates the read held back."""

    def __init__(
        self,
        refs: str,
        values: Sequence[bytes | None],
        held: Mapping[str, MessageTemplate],
        thread_id: str = "",
    ) -> None:
        self.thread_id = thread_id
        self._values = {
            refs[i * _REF_LEN : (i + 1) * _REF_LEN]: value
            for i, value in enumerate(values)
            if value is not None
        }
        self.held = held
        self.used: dict[str, None] = {}  # refs in list order (the next read's held string)

    def get(self, ref: str) -> bytes | None:
        return self._values.get(ref)


def one_node(info: Any) -> dict[str, Any]:
    """``INFO`` of one node (a cluster client answers per node)."""
    if isinstance(info, dict) and info and "redis_version" not in info and "maxmemory" not in info:
        first = next(iter(info.values()))
        if isinstance(first, dict):
            return first
    return info if isinstance(info, dict) else {}


def check_eviction_mode(mode: str) -> None:
    if mode not in EVICTION_CHOICES:
        raise ConfigurationError(f"eviction must be one of {EVICTION_CHOICES}, got {mode!r}")


def check_schema(stored: Any, key_prefix: str) -> None:
    """Refuse a key prefix that holds another storage schema."""
    if stored not in (SCHEMA_VERSION, SCHEMA_VERSION.encode()):
        raise ConfigurationError(
            f"key prefix {key_prefix!r} holds storage schema {stored!r}, expected "
            f"{SCHEMA_VERSION} (setup() migrates schema 1); use another key_prefix"
        )


def migrate_args(records: Mapping[Any, bytes], notice: int) -> list[Any]:
    """``MIGRATE_SCRIPT`` arguments for a schema-1 thread: each checkpoint's parent id (from
    its record: Lua cannot read the msgpack ``bin`` fields)."""
    out: list[Any] = [notice]
    for field_, record in records.items():
        parent = ormsgpack.unpackb(record)[4] or ""
        out += [field_, parent]
    return out


class Probe:
    """The permission probe of ``setup()``: every script and command a saver uses, run on
    two probe threads of its own key prefix (deleted afterwards)."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex
        self.thread = f"__setup_probe__{tag}"
        self.copy = f"__setup_probe_copy__{tag}"
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"messages": [HumanMessage("probe", id=f"p{tag}")]}
        checkpoint["channel_versions"] = {"messages": "1"}
        self.checkpoint = checkpoint
        self.config: RunnableConfig = {
            "configurable": {"thread_id": self.thread, "checkpoint_ns": ""}
        }
        self.stored: RunnableConfig = {
            "configurable": {
                "thread_id": self.thread,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint["id"],
            }
        }
        self.writes = [("messages", [AIMessage("probe", id=f"q{tag}")])]

    def keys(self, saver: BaseRedisSaver) -> list[str]:
        return [*saver.keys_for(self.thread), *saver.keys_for(self.copy)]

    def forget(self, saver: BaseRedisSaver) -> None:
        saver.forget_thread(self.thread)
        saver.forget_thread(self.copy)

    def sync_steps(self, saver: Any) -> list[tuple[str, Callable[[], Any]]]:
        meta: CheckpointMetadata = {"source": "input", "step": -1}
        field_ = f"\x00{self.checkpoint['id']}"
        return [
            ("put", lambda: saver.put(self.config, self.checkpoint, meta, {"messages": "1"})),
            ("put_writes", lambda: saver.put_writes(self.stored, self.writes, "probe-task")),
            ("get_tuple", lambda: saver.get_tuple(self.config)),
            ("list", lambda: list(saver.list(self.config))),
            (
                "get_delta_channel_history",
                lambda: saver.get_delta_channel_history(config=self.stored, channels=["messages"]),
            ),
            ("copy_thread", lambda: saver.copy_thread(self.thread, self.copy)),
            ("prune", lambda: saver.prune([self.copy], strategy="keep_latest")),
            ("delete_for_runs", lambda: saver.delete_checkpoints(self.copy, [field_])),
            ("turn lock", lambda: saver.turn_lock_probe(self.thread)),
            ("delete_thread", lambda: saver.delete_thread(self.thread)),
        ]

    def async_steps(self, saver: Any) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
        meta: CheckpointMetadata = {"source": "input", "step": -1}
        field_ = f"\x00{self.checkpoint['id']}"

        async def listing() -> None:
            async for _ in saver.alist(self.config):
                pass

        return [
            ("put", lambda: saver.aput(self.config, self.checkpoint, meta, {"messages": "1"})),
            ("put_writes", lambda: saver.aput_writes(self.stored, self.writes, "probe-task")),
            ("get_tuple", lambda: saver.aget_tuple(self.config)),
            ("list", listing),
            (
                "get_delta_channel_history",
                lambda: saver.aget_delta_channel_history(config=self.stored, channels=["messages"]),
            ),
            ("copy_thread", lambda: saver.acopy_thread(self.thread, self.copy)),
            ("prune", lambda: saver.aprune([self.copy], strategy="keep_latest")),
            ("delete_for_runs", lambda: saver.adelete_checkpoints(self.copy, [field_])),
            ("turn lock", lambda: saver.aturn_lock_probe(self.thread)),
            ("delete_thread", lambda: saver.adelete_thread(self.thread)),
        ]


def fence_of(config: RunnableConfig) -> str:
    """The fencing token a run's writes carry (``""``: unfenced)."""
    token = (config.get("configurable") or {}).get(FENCE_KEY)
    return "" if token is None else str(token)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
