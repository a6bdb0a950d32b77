"""The checks of the savers' ``setup()`` that need no saver state: eviction policy, TLS on a
plain port, missing ACL permissions (the I/O is the callers'; the TLS probe is one socket).

``setup()`` runs, in order: a TLS probe when the URL is ``rediss://`` (a plain Redis port
answers a plain ``PING``: "TLS?" is said at once instead of after a handshake timeout); the
server version (>= 6.2); the ``maxmemory`` / ``maxmemory-policy`` check (``eviction=``
``"warn"``, ``"refuse"`` or ``"ignore"``); then a permission probe that runs every script and
command the saver uses on a probe thread of its own key prefix (the equivalent of ``ACL
DRYRUN`` for each of them, which also works where ``ACL DRYRUN`` is missing or itself
forbidden), deleting the probe's keys afterwards.
"""

from __future__ import annotations

import socket
import uuid
import warnings
from collections.abc import Mapping
from typing import Any

import ormsgpack
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint

from streamagent.errors import ConfigurationError

__all__ = [
    "EVICTION_CHOICES",
    "SCHEMA_VERSION",
    "EvictionRiskWarning",
    "NEEDED_PERMISSIONS",
    "Probe",
    "check_eviction_mode",
    "check_schema",
    "eviction_problem",
    "handle_eviction",
    "migrate_args",
    "one_node",
    "permission_error",
    "plain_port_answers",
    "tls_endpoint",
    "tls_mismatch",
]

EVICTION_CHOICES = ("warn", "refuse", "ignore")
#: the storage schema this version writes (``setup`` migrates schema 1)
SCHEMA_VERSION = "2"

#: what the saver's Redis user needs (the ACL rule that grants exactly the commands used)
NEEDED_PERMISSIONS = (
    "on ~{<key_prefix>:* ~<key_prefix>:schema +@connection +@read +@write +@hash +@sortedset "
    "+@string +@keyspace +@scripting +time +info +dump +restore"
)


class EvictionRiskWarning(UserWarning):
    """Redis may evict the saver's keys under memory pressure (``maxmemory-policy``)."""


def eviction_problem(info: dict[str, Any], ttl_seconds: int | None) -> str | None:
    """Why Redis may evict the saver's keys (``INFO memory`` fields), or None when it can't.

    >>> eviction_problem({"maxmemory": 0, "maxmemory_policy": "allkeys-lru"}, None) is None
    True
    >>> lru = {"maxmemory": 100, "maxmemory_policy": "allkeys-lru"}
    >>> "allkeys-lru" in eviction_problem(lru, None)
    True
    >>> eviction_problem({"maxmemory": 100, "maxmemory_policy": "volatile-lru"}, None) is None
    True
    """
    policy = str(info.get("maxmemory_policy", "noeviction"))
    try:
        limit = int(info.get("maxmemory", 0))
    except (TypeError, ValueError):
        limit = 0
    if policy == "noeviction" or limit == 0:
        return None
    if policy.startswith("volatile") and not ttl_seconds:
        return None  # only keys with a TTL are evicted; without ttl_seconds the saver sets none
    which = "any key" if policy.startswith("allkeys") else "keys with a TTL (the saver's)"
    return (
        f"Redis evicts {which} under memory pressure (maxmemory={limit} bytes, "
        f"maxmemory-policy={policy}): a thread that loses a key then fails with "
        "CheckpointCorruptedError, one that loses every key reads as expired or new. "
        "Use maxmemory-policy noeviction (writes then fail loudly when memory is full), or a "
        "Redis of its own for conversation memory"
    )


def handle_eviction(problem: str | None, mode: str, where: str) -> None:
    """Warn about (``"warn"``), refuse (``"refuse"``) or ignore an eviction risk."""
    if problem is None or mode == "ignore":
        return
    if mode == "refuse":
        raise ConfigurationError(f"Redis at {where}: {problem} (setup(eviction='refuse'))")
    warnings.warn(f"Redis at {where}: {problem}", EvictionRiskWarning, stacklevel=3)


_DENIED = ("NOPERM", "no permissions to", "can't run this command", "can't access")


def permission_error(
    where: str, exc: BaseException, operation: str = "setup"
) -> ConfigurationError | None:
    """A clear :class:`ConfigurationError` for a permission refusal (``NOPERM``; inside a
    script Redis 6.2 says "can't run this command"), else None."""
    text = str(exc)
    if not isinstance(exc, redis.exceptions.NoPermissionError) and not any(
        marker in text for marker in _DENIED
    ):
        return None
    return ConfigurationError(
        f"NOPERM: the Redis user at {where} lacks a permission the saver needs for "
        f"{operation} ({text.strip()}); grant it, e.g. ACL SETUSER <user> {NEEDED_PERMISSIONS}"
    )


def tls_endpoint(client: Any) -> tuple[str, int] | None:
    """``(host, port)`` when ``client`` (redis-py, sync or async) connects with TLS."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    connection_class = getattr(pool, "connection_class", None)
    if connection_class is None or "SSL" not in connection_class.__name__:
        return None
    kwargs = getattr(pool, "connection_kwargs", {}) or {}
    return str(kwargs.get("host", "localhost")), int(kwargs.get("port", 6379))


def plain_port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when ``host:port`` answers a plain-text ``PING`` (it is not a TLS port)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-") and not reply.startswith(b"\x15")


def tls_mismatch(where: str) -> ConfigurationError:
    return ConfigurationError(
        f"TLS? The URL asks for TLS (rediss://) but Redis at {where} answers plain text on that "
        "port: use redis:// for a plain port, or the server's TLS port (tls-port)"
    )


def one_node(info: Any) -> dict[str, Any]:
    """``INFO`` of one node (a cluster client answers per node).

    >>> one_node({"n1:6379": {"redis_version": "7.0"}})
    {'redis_version': '7.0'}
    """
    if isinstance(info, dict) and info and "redis_version" not in info and "maxmemory" not in info:
        first = next(iter(info.values()))
        if isinstance(first, dict):
            return first
    return info if isinstance(info, dict) else {}


def check_eviction_mode(mode: str) -> None:
    """Refuse an unknown ``eviction=`` choice."""
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
    """``migrate.lua`` arguments for a schema-1 thread: each checkpoint's parent id (from
    its record: Lua cannot read the msgpack ``bin`` fields)."""
    out: list[Any] = [notice]
    for field_, record in records.items():
        parent = ormsgpack.unpackb(record)[4] or ""
        out += [field_, parent]
    return out


class Probe:
    """The data of ``setup()``'s permission probe: two probe threads of the saver's own key
    prefix (a thread and its copy), a checkpoint with a message and a pending write."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex
        self.thread = f"__setup_probe__{tag}"
        self.copy = f"__setup_probe_copy__{tag}"
        checkpoint: Checkpoint = empty_checkpoint()
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
        self.field = f"\x00{checkpoint['id']}"
