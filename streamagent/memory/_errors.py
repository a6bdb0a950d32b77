"""Translate redis-py failures into :class:`~streamagent.errors.MemoryUnavailable` (no I/O)."""

from __future__ import annotations

import re
from typing import Any

import redis

from streamagent.errors import ConfigurationError, MemoryUnavailable

__all__ = ["MIN_SERVER_VERSION", "check_server_version", "describe_client", "memory_error"]

MIN_SERVER_VERSION = (6, 2)


def describe_client(client: Any) -> str:
    """``host:port`` (or the unix socket path) of a redis-py client, never its password."""
    nodes = getattr(client, "startup_nodes", None)
    if nodes:
        return ",".join(f"{n.host}:{n.port}" for n in nodes[:3])
    pool = getattr(client, "connection_pool", None)
    kwargs: dict[str, Any] = getattr(pool, "connection_kwargs", {}) or {}
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


def memory_error(
    where: str, operation: str, exc: BaseException, *, tls: bool = False
) -> MemoryUnavailable:
    """A :class:`MemoryUnavailable` for a failed Redis ``operation`` (``where`` = host:port);
    ``tls``: the client connects with TLS (a failed connection then asks "TLS?")."""
    if isinstance(exc, redis.ConnectionError) and "No connection available" in str(exc):
        reason = (
            f"every connection of the pool to Redis at {where} stayed busy for the pool "
            "timeout (Redis is reachable; raise max_connections / pool_timeout or lower the "
            "concurrency)"
        )
    elif isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        reason = f"cannot reach Redis at {where} ({type(exc).__name__}: {exc})"
        if tls:
            reason += (
                "; TLS? the connection uses TLS (rediss://): if that port is a plain Redis "
                "port, the handshake never completes - use redis:// or the server's tls-port"
            )
    else:
        reason = f"Redis at {where} failed ({type(exc).__name__}: {exc})"
    return MemoryUnavailable(
        f"checkpoint {operation} failed: {reason}; nothing was saved"
        if operation.startswith(("put", "delete"))
        else f"checkpoint {operation} failed: {reason}"
    )


def check_server_version(info: dict[str, Any], where: str) -> None:
    """Refuse servers older than Redis 6.2 (Valkey reports a compatible ``redis_version``)."""
    raw = str(info.get("redis_version", "0"))
    match = re.match(r"(\d+)\.(\d+)", raw)
    version = (int(match[1]), int(match[2])) if match else (0, 0)
    if version < MIN_SERVER_VERSION:
        raise ConfigurationError(
            f"Redis at {where} is version {raw}; streamagent's saver needs Redis >= 6.2 or Valkey"
        )
