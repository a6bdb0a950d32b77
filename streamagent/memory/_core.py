"""The options, keys and verdicts every saver operation shares (no I/O).

:class:`SaverCore` validates the options, holds the process's caches
(:class:`~streamagent.memory._state.ThreadMemory`, the encode / decode caches), builds the
keys of a thread, turns a script's verdict into a result or a typed error, and wraps
requests so that a Redis failure becomes :class:`~streamagent.errors.MemoryUnavailable`
naming the operation. The operations themselves are in ``_writes.py``, ``_reads.py`` and
``_admin.py``; the I/O is the shells' (``sync.py``, ``aio.py``).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.exceptions import NoScriptError, RedisError

from streamagent.errors import (
    CheckpointCorruptedError,
    ConfigurationError,
    MemoryUnavailable,
    ThreadExpiredError,
    TurnFencedError,
)
from streamagent.memory._errors import describe_client, memory_error
from streamagent.memory._lua import Script
from streamagent.memory._protocol import Command, Op, Request
from streamagent.memory._setup import tls_endpoint
from streamagent.memory._state import ThreadMemory
from streamagent.memory.keys import (
    ThreadKeys,
    encoded_thread_keys,
    index_match,
    schema_key,
    thread_keys,
)
from streamagent.memory.serde import DecodeCache, EncodeCache, StrictSerializer

__all__ = [
    "ClientT",
    "EXPIRY_NOTICE_SECONDS",
    "KNOWN_THREADS",
    "MESSAGE_CACHE_BYTES",
    "SaverCore",
    "text",
]

#: how long a thread's tombstone outlives its data (ThreadExpiredError instead of silence)
EXPIRY_NOTICE_SECONDS = 7 * 24 * 3600
#: threads a saver remembers having seen (reports a thread lost by a flush as expired)
KNOWN_THREADS = 65536
#: stored bytes of deserialized messages a saver keeps (reads hand out copies)
MESSAGE_CACHE_BYTES = 32 * 1024 * 1024

#: the redis-py client type of a saver (sync or async, single node or Cluster)
ClientT = TypeVar("ClientT")


def text(value: bytes | str) -> str:
    """A reply value as text."""
    return value.decode() if isinstance(value, bytes) else value


class SaverCore(BaseCheckpointSaver[str], Generic[ClientT]):
    """Options, caches, keys and verdicts shared by every operation (no I/O).

    ``client`` is only kept (for the shells) and inspected (its address for error messages,
    whether it uses TLS), never used.
    """

    def __init__(
        self,
        client: ClientT,
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
        self.client = client
        self._where = describe_client(client)  # host:port for error messages
        #: ``(host, port)`` when the client connects with TLS
        self._tls_endpoint = tls_endpoint(client)
        self._tls = self._tls_endpoint is not None
        self.key_prefix = key_prefix
        self.ttl_seconds = ttl_seconds
        self.refresh_ttl_on_read = refresh_ttl_on_read
        self.keep_last = keep_last
        self.expiry_notice_seconds = expiry_notice_seconds
        self.known_threads = known_threads if expiry_notice_seconds else 0
        self._memory = ThreadMemory(
            known_threads=self.known_threads,
            window_seconds=(ttl_seconds or 0) + expiry_notice_seconds,
        )
        self._encoded = EncodeCache()
        # ref -> deserialized message template (reads hand out copies)
        self._decoded = DecodeCache(message_cache_bytes)

    # ------------------------------------------------------------------ keys
    def schema_key(self) -> str:
        """The key recording the storage schema version (written by ``setup``)."""
        return schema_key(self.key_prefix)

    def keys_for(self, thread_id: str) -> ThreadKeys:
        """The keys of ``thread_id`` (all in one hash slot)."""
        return thread_keys(self.key_prefix, str(thread_id))

    def data_keys(self, thread_id: str) -> list[str]:
        """The keys holding the thread's data (not its tombstone or turn lock)."""
        return list(self.keys_for(thread_id).data)

    def index_match(self) -> str:
        """SCAN pattern matching the index key of every thread under this prefix."""
        return index_match(self.key_prefix)

    @property
    def _ttl(self) -> int:
        return self.ttl_seconds or 0

    # ------------------------------------------------------------------ I/O requests
    def _fail(self, operation: str, exc: BaseException) -> MemoryUnavailable:
        return memory_error(self._where, operation, exc, tls=self._tls)

    def _call(self, request: Request, operation: str) -> Op[Any]:
        """``request``'s reply; a Redis failure raises :class:`MemoryUnavailable`."""
        try:
            return (yield request)
        except RedisError as exc:
            raise self._fail(operation, exc) from exc

    def _script(
        self, script: Script, thread_id: str, args: list[Any], operation: str = ""
    ) -> Op[Any]:
        """Run ``script`` on the keys of ``thread_id`` (``EVALSHA``; loads it first where
        the server lost it). Redis failures raise :class:`MemoryUnavailable` naming
        ``operation``, or raw when ``operation`` is empty (the caller maps them)."""
        keys = encoded_thread_keys(self.key_prefix, thread_id)
        command = Command(("EVALSHA", script.sha, len(keys), *keys, *args))
        try:
            try:
                return (yield command)
            except NoScriptError:
                yield Command(("SCRIPT", "LOAD", script.text))
                return (yield command)
        except RedisError as exc:
            if not operation:
                raise
            raise self._fail(operation, exc) from exc

    # ------------------------------------------------------------------ verdicts
    def remember_thread(self, thread_id: str) -> None:
        """Note that ``thread_id`` is stored (a later read that finds it gone says so)."""
        self._memory.remember_thread(thread_id)

    def forget_thread(self, thread_id: str) -> None:
        """Drop what this process knows of a deleted or replaced thread."""
        self._memory.forget(thread_id)

    def absent(self, status: str, thread_id: str, count: int) -> list[CheckpointTuple | None]:
        """A script's verdict other than "intact": raises :class:`CheckpointCorruptedError`
        (``C<piece>``) or, for a thread with no data (``A<tombstone>``, see
        ``absent_verdict`` in ``lua/lib/thread.lua``), :class:`ThreadExpiredError`
        ("expired" by its TTL, or "lost": its live tombstone has no TTL, or this process
        knew it), else ``count`` Nones (never stored, or deleted)."""
        if status.startswith("C"):
            raise CheckpointCorruptedError(thread_id, status[1:])
        tombstone = status[1:]
        knew = tombstone not in {"0", "1", "L"} and self._memory.knew(thread_id)
        self.forget_thread(thread_id)
        if tombstone == "1":
            raise ThreadExpiredError(thread_id, "expired")
        if tombstone == "L" or knew:
            raise ThreadExpiredError(thread_id, "lost")
        return [None] * count

    def check_write(self, reply: Any, thread_id: str) -> bool:
        """A write script's reply: True when stored, False when its shortcuts failed (send
        everything); raises for a damaged thread or a fenced-out turn."""
        if reply == 1:
            return True
        if reply == 0:
            return False
        status = text(reply)
        if status == "F":
            raise TurnFencedError(thread_id)
        raise CheckpointCorruptedError(thread_id, status[1:])
