"""Connection defaults and pool bounds of the savers' ``from_url`` clients (no I/O).

Example:
    >>> options = {"max_connections": 8, "connection_options": {"db": 2}, "keep_last": 3}
    >>> pool_options(options), options
    ({'max_connections': 8, 'pool_timeout': 10.0, 'db': 2}, {'keep_last': 3})
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONNECTION_DEFAULTS", "POOL_MAX_CONNECTIONS", "POOL_TIMEOUT_SECONDS", "pool_options"]

#: socket timeouts and health checks of every client a saver builds
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
}
#: connections a saver's pool opens at most (``from_url``); more concurrent calls queue
POOL_MAX_CONNECTIONS = 64
#: how long a call waits in that queue for a free connection before MemoryUnavailable
POOL_TIMEOUT_SECONDS = 10.0


def pool_options(options: dict[str, Any]) -> dict[str, Any]:
    """The client-factory arguments in ``from_url``'s ``options`` (removed from them; what
    remains goes to the saver's constructor): ``max_connections``, ``pool_timeout`` and the
    redis-py ``connection_options``."""
    return {
        "max_connections": options.pop("max_connections", POOL_MAX_CONNECTIONS),
        "pool_timeout": options.pop("pool_timeout", POOL_TIMEOUT_SECONDS),
        **options.pop("connection_options", {}),
    }
