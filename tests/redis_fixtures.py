"""Real-Redis fixtures for the memory tests (import with ``from tests.redis_fixtures import *``).

``REDIS_URL`` when set, else one embedded redis-server per test process (started on first
use, stopped at exit). Every test gets its own key prefix and its keys are deleted afterwards.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from streamagent.memory import AsyncRedisSaver, EmbeddedRedis, RedisSaver

__all__ = [
    "async_client",
    "key_prefix",
    "make_saver",
    "redis_url",
    "saver_class",
    "sync_client",
]

_lock = threading.Lock()
_server: EmbeddedRedis | None = None


def test_redis_url() -> str:
    """The Redis the tests use: ``REDIS_URL`` or a shared embedded server."""
    global _server
    if env := os.environ.get("REDIS_URL"):
        return env
    with _lock:
        if _server is None:
            _server = EmbeddedRedis(data_dir=Path(tempfile.mkdtemp(prefix="sa-redis-")))
            _server.start()
            atexit.register(_server.stop)
        return _server.start()


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    keys = list(client.scan_iter(match=f"{{{prefix}:*", count=1000))
    keys.append(f"{prefix}:schema")
    for key in keys:
        client.delete(key)


@pytest.fixture
def redis_url() -> str:
    return test_redis_url()


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"satest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        delete_prefix(client, prefix)
    finally:
        client.close()


@pytest.fixture
def sync_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
async def async_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture(params=["sync", "async"])
def saver_class(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_saver(redis_url: str, key_prefix: str, sync_client: redis.Redis) -> Iterator[Any]:
    """``make_saver(kind, **options)`` -> a set-up RedisSaver ("sync") or an AsyncRedisSaver
    (call ``await saver.asetup()`` in the test's loop)."""

    def factory(kind: str = "sync", **options: Any) -> RedisSaver | AsyncRedisSaver:
        options.setdefault("key_prefix", key_prefix)
        if kind == "sync":
            saver = RedisSaver(sync_client, **options)
            saver.setup()
            return saver
        client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        return AsyncRedisSaver(client, **options)

    yield factory
