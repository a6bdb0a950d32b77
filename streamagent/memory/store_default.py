"""The store ``build_agent`` uses when none is given: on the checkpointer's Redis.

Example:
    >>> default_store.__name__
    'default_store'
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster

from streamagent.memory.embedded import default_redis_url
from streamagent.memory.store_aio import AsyncRedisStore
from streamagent.memory.store_base import BaseRedisStore
from streamagent.memory.store_sync import CONNECTION_DEFAULTS, RedisStore

__all__ = ["default_store"]


def default_store(checkpointer: Any = None, **options: Any) -> BaseRedisStore:
    """The store ``build_agent`` uses by default, on the checkpointer's Redis: a set-up
    :class:`RedisStore` on a sync redis-py client, an :class:`AsyncRedisStore` on an async
    one (set up by its first batch: this function cannot await), else a
    :class:`RedisStore` on ``REDIS_URL`` / the embedded server.

    Example:
        >>> store = default_store()  # doctest: +SKIP
    """
    client = getattr(checkpointer, "client", None)
    if isinstance(client, aioredis.Redis | aiocluster.RedisCluster):
        return AsyncRedisStore(client, setup_on_first_use=True, **options)
    if not isinstance(client, redis.Redis | redis.RedisCluster):
        client = redis.Redis.from_url(default_redis_url(), **CONNECTION_DEFAULTS)
    store = RedisStore(client, **options)
    store.setup()
    return store
