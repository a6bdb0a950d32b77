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
    "PrivateRedis",
    "async_client",
    "key_prefix",
    "make_saver",
    "private_redis",
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


class PrivateRedis:
    """A redis-server of the test's own (the embedded binary, no persistence) on a fixed
    port, for faults the shared server must not see: maxmemory eviction, ACL users, a
    restart that comes back empty."""

    def __init__(self, *args: str) -> None:
        from streamagent.memory.embedded import free_port, redis_server_path

        self.port = free_port()
        self.args = [str(redis_server_path()), "--port", str(self.port), "--save", "",
                     "--appendonly", "no", "--bind", "127.0.0.1", *args]  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: Any = None

    def start(self) -> PrivateRedis:
        import subprocess
        import time

        self.process = subprocess.Popen(
            self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
                client.ping()
                client.close()
                return self
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart_empty(self) -> None:
        """Stop the server and start it again with no data (no persistence)."""
        self.stop()
        self.start()

    def client(self, **options: Any) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, **options)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis().start()
    yield server
    server.stop()
