"""The Redis stores on a real 3-node Redis Cluster: namespaces spread over nodes, every key of
a namespace in one slot (no CROSSSLOT), the same results as InMemoryStore."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio.cluster as aiocluster
from langgraph.store.memory import InMemoryStore
from redis.cluster import RedisCluster

from streamagent.errors import ConfigurationError
from streamagent.memory import AsyncRedisStore, RedisStore
from streamagent.memory.store_index import VectorSearchConfig
from tests.integration_tests.test_memory_cluster import cluster_ports
from tests.store_fixtures import index_config

__all__ = ["cluster_ports"]

pytestmark = pytest.mark.cluster

NAMESPACES = [("users", f"u{i}", kind) for i in range(12) for kind in ("facts", "prefs")]


@pytest.fixture
def cluster(cluster_ports: list[int]) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0], socket_timeout=5)
    yield client
    client.close()


def _fill(store: Any) -> None:
    for n, ns in enumerate(NAMESPACES):
        for k in range(3):
            store.put(
                ns, f"k{k}", {"text": f"user {ns[1]} likes item{k} {ns[2]}", "n": (n + k) % 4}
            )


def _summary(store: Any) -> Any:
    return (
        store.list_namespaces(prefix=("users",), max_depth=2),
        store.list_namespaces(suffix=("prefs",), limit=5, offset=2),
        sorted(
            (i.namespace, i.key)
            for i in store.search(("users",), filter={"n": {"$gte": 2}}, limit=500)
        ),
        [
            (i.namespace, i.key)
            for i in store.search(("users", "u3"), query="likes item1 facts", limit=3)
        ],
        store.get(("users", "u7", "prefs"), "k2").value,
    )


def test_sync_store_on_a_cluster_matches_in_memory_store(cluster: RedisCluster) -> None:
    store = RedisStore(cluster, key_prefix="clstore-sync", index=index_config(fields=["text"]))
    store.setup()
    _fill(store)
    reference = InMemoryStore(index=index_config(fields=["text"]))  # type: ignore[arg-type]
    _fill(reference)
    assert _summary(store) == _summary(reference)
    # one slot per namespace; namespaces spread over the nodes
    nodes = set()
    for ns in NAMESPACES:
        keys = store.keys_for(ns)
        assert (
            len({cluster.keyslot(k) for k in (keys.idx, keys.ver, keys.doc("k0"), keys.vec("k0"))})
            == 1
        )
        nodes.add(cluster.get_node_from_key(keys.idx).port)
    assert len(nodes) == 3
    for ns in NAMESPACES:
        for k in range(3):
            store.delete(ns, f"k{k}")
    assert store.list_namespaces(prefix=("users",)) == []


def test_a_cluster_client_searches_exactly(cluster: RedisCluster) -> None:
    """The query engine's Cluster coordinator is not supported: auto is exact, and asking
    for the server's index is refused at setup."""
    auto = RedisStore(cluster, key_prefix="clstore-path", index=index_config())  # type: ignore[arg-type]
    auto.setup()
    assert (auto.search_path, auto.server_vector_index) == ("exact", False)
    forced = RedisStore(
        cluster,
        key_prefix="clstore-path",
        index=index_config(),  # type: ignore[arg-type]
        vector_search=VectorSearchConfig(path="server"),
    )
    with pytest.raises(ConfigurationError, match="vector search path 'server'"):
        forced.setup()


def test_ttl_on_a_cluster(cluster: RedisCluster) -> None:
    store = RedisStore(cluster, key_prefix="clstore-ttl")
    store.setup()
    store.put(("t", "a"), "k", {"v": 1}, ttl=0.003)
    store.put(("t", "b"), "k", {"v": 2})
    keys = store.keys_for(("t", "a"))
    assert 0 < cluster.pttl(keys.doc("k")) <= 180
    deadline = time.monotonic() + 10
    while store.get(("t", "a"), "k", refresh_ttl=False) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.list_namespaces(prefix=("t",)) == [("t", "b")]
    assert [i.key for i in store.search(("t",))] == ["k"]
    time.sleep(0.05)
    assert not cluster.exists(keys.idx) and not cluster.exists(keys.ver)
    store.delete(("t", "b"), "k")


async def test_async_store_on_a_cluster(cluster_ports: list[int]) -> None:
    client = aiocluster.RedisCluster(host="127.0.0.1", port=cluster_ports[1], socket_timeout=5)
    try:
        store = AsyncRedisStore(
            client, key_prefix="clstore-async", index=index_config(fields=["text"])
        )
        await store.asetup()
        for n, ns in enumerate(NAMESPACES[:8]):
            await store.aput(ns, "k", {"text": f"note {n}", "n": n})
        assert len(await store.alist_namespaces(prefix=("users",))) == 8
        hits = await store.asearch(("users",), query="note 5", limit=1)
        assert hits[0].value["n"] == 5
        assert {
            i.value["n"] for i in await store.asearch(("users",), filter={"n": {"$lt": 3}})
        } == {0, 1, 2}
        for ns in NAMESPACES[:8]:
            await store.adelete(ns, "k")
        assert await store.alist_namespaces(prefix=("users",)) == []
    finally:
        await client.aclose()
