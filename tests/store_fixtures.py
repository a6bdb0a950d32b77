"""Real-Redis fixtures for the store tests: a unique key prefix per test, cleaned up after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from streamagent.memory import RedisStore
from streamagent.testing.embeddings import HashEmbeddings
from tests.redis_fixtures import test_redis_url as redis_url_for_tests

DIMS = 128


def index_config(dims: int = DIMS, **extra: Any) -> dict[str, Any]:
    return {"dims": dims, "embed": HashEmbeddings(dims=dims), **extra}


def delete_store_keys(client: Any, prefix: str) -> None:
    """Every key of the store under ``prefix`` (items, vectors, registry, schema)."""
    for pattern in (f"{{{prefix}:*", f"{prefix}:v:*"):
        for key in list(client.scan_iter(match=pattern, count=1000)):
            client.delete(key)
    client.delete(f"{prefix}:namespaces", f"{prefix}:schema")


def store_keys(client: Any, prefix: str) -> list[bytes]:
    """The data keys of the store under ``prefix`` (not the schema marker setup() writes)."""
    keys = list(client.scan_iter(match=f"{{{prefix}:*", count=1000))
    keys += client.scan_iter(match=f"{prefix}:v:*", count=1000)
    if client.exists(f"{prefix}:namespaces"):
        keys.append(f"{prefix}:namespaces".encode())
    return sorted(keys)


@pytest.fixture
def store_prefix() -> Iterator[str]:
    prefix = f"sastore-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url_for_tests())
    try:
        delete_store_keys(client, prefix)
    finally:
        client.close()


@pytest.fixture
def rclient() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url_for_tests(), socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
def make_store(rclient: redis.Redis, store_prefix: str) -> Any:
    def factory(**options: Any) -> RedisStore:
        options.setdefault("key_prefix", store_prefix)
        store = RedisStore(rclient, **options)
        store.setup()
        return store

    return factory
