"""Semantic search through the server's own vector index, on real servers that have one
(Redis 8.2, and Valkey 8.1, each with the RediSearch 2.10 module; started from PyPI wheels:
see ``tests/store_fixtures.py``): the same data gives the same results (ids and order, scores
within float32 rounding) through the server's index and through the exact path, the index
follows every put, delete, re-index and expiry, and what does not fit is refused clearly.
"""

from __future__ import annotations

import hashlib
import random
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.embeddings import Embeddings
from langgraph.store.base import SearchItem

from streamagent.errors import ConfigurationError
from streamagent.memory import AsyncRedisStore, RedisStore
from streamagent.memory.store_index import VectorSearchConfig
from streamagent.memory.store_schema import StoreSchemaError
from tests.store_fixtures import (
    FT_SERVERS,
    StoreServers,
    delete_store_keys,
    index_config,
    store_servers,
)

__all__ = ["store_servers"]

DIMS = 32
LABELS = ["a", "b", "c"]
FILTERS: list[dict[str, Any] | None] = [
    None,
    {"n": {"$gt": 3}},
    {"n": {"$gte": 3, "$lt": 7}},
    {"n": {"$lte": 2}},
    {"n": {"$ne": 5}},
    {"n": {"$eq": 4}},
    {"s": "x"},
    {"s": {"$ne": "y"}, "n": {"$gte": 1}},
    {"meta": {"k": "a"}},
    {"tags": ["red", "blue"]},
    {"n": 9, "s": "z"},
]


class RandomEmbeddings(Embeddings):
    """A Gaussian vector per text (seeded by the text): no two texts tie."""

    def __init__(self, dims: int = DIMS) -> None:
        self.dims = dims

    def _one(self, text: str) -> list[float]:
        seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
        return [float(x) for x in np.random.default_rng(seed).standard_normal(self.dims)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


@pytest.fixture(params=FT_SERVERS)
def ft_url(request: pytest.FixtureRequest, store_servers: StoreServers) -> str:
    """Every test here runs on Redis 8.2 and on Valkey 8.1, each with RediSearch."""
    return store_servers.url(str(request.param))


@pytest.fixture
def search_client(ft_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(ft_url, socket_timeout=10)
    yield client
    client.close()


@pytest.fixture
def prefix(search_client: redis.Redis) -> Iterator[str]:
    name = f"saidx-{uuid.uuid4().hex[:10]}"
    yield name
    delete_store_keys(search_client, name)


def both(client: Any, prefix: str, index: dict[str, Any], **options: Any) -> tuple[Any, Any]:
    """Two set-up stores on the same data: through the server's index, and exact."""
    server = RedisStore(client, key_prefix=prefix, index=index, **options)  # type: ignore[arg-type]
    server.setup()
    exact = RedisStore(
        client,
        key_prefix=prefix,
        index=index,  # type: ignore[arg-type]
        vector_search=VectorSearchConfig(path="exact"),
    )
    exact.setup()
    assert (server.search_path, exact.search_path) == ("server", "exact")
    return server, exact


def rows(items: list[SearchItem]) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    return [(i.namespace, i.key, i.value) for i in items]


def assert_same(served: list[SearchItem], exact: list[SearchItem], *, ties: bool) -> None:
    """Same items, same order, scores within float32 rounding; with ``ties``, items whose
    scores are equal (within rounding) may trade places, and nothing else may."""
    assert len(served) == len(exact), (rows(served), rows(exact))
    for a, b in zip(served, exact, strict=True):
        assert (a.score is None) == (b.score is None), (a, b)
        if a.score is not None:
            assert abs(a.score - b.score) < 1e-5, (a, b)
        if (a.namespace, a.key) != (b.namespace, b.key):
            assert ties and a.score is not None, (rows(served), rows(exact))
        else:
            assert a.value == b.value
    if not ties:
        return

    # a swap stays inside a group of tied scores: the same items per score
    def groups(items: list[SearchItem]) -> dict[Any, set[Any]]:
        out: dict[Any, set[Any]] = {}
        for i in items:
            out.setdefault(None if i.score is None else round(i.score, 4), set()).add(
                (i.namespace, i.key)
            )
        return out

    if len(served) == len(exact) and served:
        full_a, full_b = groups(served), groups(exact)
        inner = set(full_a) - {min((k for k in full_a if k is not None), default=None)}
        for score in inner:
            if score is not None:
                assert full_a[score] == full_b.get(score), score


def _uses(client: redis.Redis, store: RedisStore) -> int:
    info = client.execute_command("FT.INFO", store.index_name)
    pairs = info if isinstance(info, dict) else dict(zip(info[::2], info[1::2], strict=True))
    return int(pairs[b"number_of_uses"])


def fill(store: Any, rnd: random.Random, count: int) -> None:
    for i in range(count):
        depth = rnd.randint(1, 3)
        ns = tuple(rnd.choice(LABELS) for _ in range(depth))
        value = {
            "text": f"text {i} {rnd.random()}",
            "title": f"title {i} {rnd.random()}",  # no two vectors alike: no ties
            "n": rnd.randint(0, 9),
            "s": rnd.choice("xyz"),
            "tags": rnd.choice([["red", "blue"], ["red"], []]),
            "meta": {"k": rnd.choice("ab")},
        }
        index = rnd.choice([None, None, None, ["text"], False])
        ttl = rnd.choice([None, None, 30.0])
        store.put(ns, f"k{i}", value, index=index, ttl=ttl)


def test_setup_creates_the_index_and_the_paths_are_selectable(
    search_client: redis.Redis, prefix: str, store_servers: StoreServers
) -> None:
    server, exact = both(search_client, prefix, index_config(fields=["text"]))
    assert server.server_vector_index and exact.server_vector_index
    info = search_client.execute_command("FT.INFO", server.index_name)
    assert b"FLAT" in repr(info).encode() and server.index_name == f"{prefix}:vectors"
    # no index config: nothing to index, exact (and nothing created)
    plain = RedisStore(search_client, key_prefix=prefix + "-plain")
    plain.setup()
    assert plain.search_path == "exact" and plain.server_vector_index
    # a server without a query engine: auto goes exact, "server" is refused
    redis_client = redis.Redis.from_url(store_servers.url("redis"))
    try:
        auto = RedisStore(redis_client, key_prefix=prefix, index=index_config())  # type: ignore[arg-type]
        auto.setup()
        assert (auto.search_path, auto.server_vector_index) == ("exact", False)
        forced = RedisStore(
            redis_client,
            key_prefix=prefix,
            index=index_config(),  # type: ignore[arg-type]
            vector_search=VectorSearchConfig(path="server"),
        )
        with pytest.raises(ConfigurationError, match="needs a server with a vector index"):
            forced.setup()
    finally:
        delete_store_keys(redis_client, prefix)
        redis_client.close()
    with pytest.raises(ConfigurationError, match="vector search path"):
        VectorSearchConfig(path="fast")


def test_same_results_through_both_paths_on_random_data(
    search_client: redis.Redis, prefix: str
) -> None:
    index = {"dims": DIMS, "embed": RandomEmbeddings(), "fields": ["text", "title"]}
    server, exact = both(search_client, prefix, index)
    rnd = random.Random(20261205)
    fill(server, rnd, 240)
    uses_before = _uses(search_client, server)
    checked = 0
    for round_ in range(80):
        prefix_ns = tuple(rnd.choice(LABELS) for _ in range(rnd.randint(0, 2)))
        flt = rnd.choice(FILTERS)
        limit, offset = rnd.randint(1, 25), rnd.choice([0, 0, 1, 5, 17, 60])
        query = f"query {round_}"
        kwargs = {"filter": flt, "query": query, "limit": limit, "offset": offset}
        served = server.search(prefix_ns, **kwargs)
        expected = exact.search(prefix_ns, **kwargs)
        assert_same(served, expected, ties=False)
        checked += len(served)
        # the page is the slice of the whole ranking
        whole = server.search(prefix_ns, filter=flt, query=query, limit=offset + limit)
        assert rows(served) == rows(whole[offset:])
    assert checked > 300  # the comparisons were not all empty pages
    assert _uses(search_client, server) - uses_before >= 160  # the server path used the index
    # unscored items (index=False) fill the ranking after the scored ones on both paths
    everything = server.search((), query="anything", limit=1000)
    assert_same(everything, exact.search((), query="anything", limit=1000), ties=False)
    scored = [i.score for i in everything if i.score is not None]
    assert 0 < len(scored) < len(everything) == 240
    assert all(i.score is None for i in everything[len(scored) :])


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(LABELS), min_size=1, max_size=3).map(tuple),
            st.sampled_from(["k1", "k2", "k3", "k4"]),
            st.lists(st.sampled_from(["apple", "pear", "tea", "red", "green"]), max_size=3),
            st.integers(0, 3),
            st.sampled_from([None, False]),
        ),
        min_size=1,
        max_size=30,
    ),
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(LABELS), max_size=2).map(tuple),
            st.sampled_from(FILTERS[:8]),
            st.lists(st.sampled_from(["apple", "pear", "tea", "red"]), min_size=1, max_size=2),
            st.integers(1, 8),
            st.integers(0, 6),
        ),
        min_size=1,
        max_size=8,
    ),
)
def test_same_results_through_both_paths_with_ties(
    ft_url: str, puts: list[Any], searches: list[Any]
) -> None:
    """Bag-of-words embeddings tie a lot: tied items may trade places, nothing else."""
    client = redis.Redis.from_url(ft_url)
    name = f"saidx-h-{uuid.uuid4().hex[:10]}"
    try:
        server, exact = both(client, name, index_config(dims=16, fields=["text"]))
        for ns, key, words, n, index in puts:
            value = {"text": " ".join(words), "n": n, "s": "xy"[n % 2]}
            server.put(ns, key, value, index=index)
        for prefix_ns, flt, words, limit, offset in searches:
            kwargs = {"filter": flt, "query": " ".join(words), "limit": limit, "offset": offset}
            assert_same(
                server.search(prefix_ns, **kwargs), exact.search(prefix_ns, **kwargs), ties=True
            )
            full = {"filter": flt, "query": " ".join(words), "limit": 1000}
            assert_same(
                server.search(prefix_ns, **full), exact.search(prefix_ns, **full), ties=True
            )
    finally:
        delete_store_keys(client, name)
        client.close()


def _indexed(client: redis.Redis, store: RedisStore) -> set[bytes]:
    reply = client.execute_command(
        "FT.SEARCH", store.index_name, "*", "NOCONTENT", "LIMIT", "0", "10000"
    )
    ids = reply[b"results"] if isinstance(reply, dict) else reply[1:]
    return {r[b"id"] if isinstance(r, dict) else r for r in ids}


def test_the_index_follows_puts_deletes_reindexing_and_expiry(
    search_client: redis.Redis, prefix: str
) -> None:
    server, exact = both(search_client, prefix, index_config(fields=["text", "title"]))
    keys = server.keys_for(("m",))
    server.put(("m",), "two", {"text": "black coffee", "title": "drinks"})
    server.put(("m",), "one", {"text": "green tea"}, index=["text"])
    assert _indexed(search_client, server) == {
        keys.vec("two", 0).encode(),
        keys.vec("two", 1).encode(),
        keys.vec("one", 0).encode(),
    }
    # re-put with fewer vectors: the extra one leaves the index; index=False: all leave
    server.put(("m",), "two", {"text": "black coffee"}, index=["text"])
    assert keys.vec("two", 1).encode() not in _indexed(search_client, server)
    server.put(("m",), "one", {"text": "green tea"}, index=False)
    assert _indexed(search_client, server) == {keys.vec("two", 0).encode()}
    hits = server.search(("m",), query="green tea")
    assert [(h.key, h.score is None) for h in hits] == [("two", False), ("one", True)]
    server.delete(("m",), "two")
    assert _indexed(search_client, server) == set()
    assert [h.key for h in server.search(("m",), query="coffee")] == ["one"]
    # expiry: the item disappears from both paths at once, then from the index itself
    server.put(("t",), "brief", {"text": "fleeting thought"}, ttl=0.004)  # 240 ms
    server.put(("t",), "stays", {"text": "lasting thought"})
    assert [h.key for h in server.search(("t",), query="fleeting thought")] == ["brief", "stays"]
    deadline = time.monotonic() + 10
    while server.get(("t",), "brief", refresh_ttl=False) is not None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    for store in (server, exact):
        assert [h.key for h in store.search(("t",), query="fleeting thought")] == ["stays"]
    brief = server.keys_for(("t",)).vec("brief").encode()
    while brief in _indexed(search_client, server):
        assert time.monotonic() < deadline, "the expired vector stayed in the index"
        time.sleep(0.05)


def test_refresh_on_read_renews_every_vector_of_the_item(
    search_client: redis.Redis, prefix: str
) -> None:
    server, _ = both(search_client, prefix, index_config(fields=["text", "title"]))
    server.put(("r",), "k", {"text": "red apple", "title": "fruit"}, ttl=1.0)
    keys = server.keys_for(("r",))
    for i in (0, 1):
        search_client.pexpire(keys.vec("k", i), 5_000)
    assert [h.key for h in server.search(("r",), query="red apple")] == ["k"]
    assert all(search_client.pttl(keys.vec("k", i)) > 55_000 for i in (0, 1))


def test_a_search_needing_more_than_the_server_gives_goes_exact(
    search_client: redis.Redis, prefix: str
) -> None:
    index = {"dims": DIMS, "embed": RandomEmbeddings(), "fields": ["text"]}
    server, exact = both(
        search_client, prefix, index, vector_search=VectorSearchConfig(max_server_results=16)
    )
    for i in range(60):
        server.put(("f", f"u{i % 3}"), f"k{i}", {"text": f"t{i}", "n": i})
    for flt, limit, offset in [
        ({"n": {"$gte": 55}}, 3, 1),
        ({"n": {"$lt": 10}}, 10, 0),
        (None, 40, 5),
    ]:
        kwargs = {"filter": flt, "query": "q", "limit": limit, "offset": offset}
        assert_same(server.search(("f",), **kwargs), exact.search(("f",), **kwargs), ties=False)
    assert [h.value["n"] for h in server.search(("f",), filter={"n": 59}, query="q")] == [59]


def test_zero_vectors_are_unscored_and_a_zero_query_ranks_like_exact(
    search_client: redis.Redis, prefix: str
) -> None:
    server, exact = both(search_client, prefix, index_config(fields=["text"]))
    server.put(("z",), "empty", {"text": "!!"})  # no words: a zero vector, not stored
    server.put(("z",), "word", {"text": "apple"})
    assert not search_client.exists(server.keys_for(("z",)).vec("empty"))
    for store in (server, exact):
        hits = store.search(("z",), query="apple")
        assert [(h.key, h.score is None) for h in hits] == [("word", False), ("empty", True)]
    assert_same(server.search(("z",), query="??"), exact.search(("z",), query="??"), ties=False)


def test_an_index_of_another_shape_is_refused(search_client: redis.Redis, prefix: str) -> None:
    both(search_client, prefix, index_config(dims=16))
    other = RedisStore(search_client, key_prefix=prefix, index=index_config(dims=8))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="FT.DROPINDEX"):
        other.setup()


async def test_async_store_searches_through_the_server_index_too(
    ft_url: str, search_client: redis.Redis, prefix: str
) -> None:
    index = {"dims": DIMS, "embed": RandomEmbeddings(), "fields": ["text"]}
    server, exact = both(search_client, prefix, index)
    fill(server, random.Random(7), 60)
    client = aioredis.Redis.from_url(ft_url)
    try:
        astore = AsyncRedisStore(client, key_prefix=prefix, index=index)  # type: ignore[arg-type]
        await astore.asetup()
        assert astore.search_path == "server"
        for flt in FILTERS[:5]:
            kwargs = {"filter": flt, "query": "q", "limit": 7, "offset": 2}
            mine = await astore.asearch(("a",), **kwargs)
            assert_same(mine, exact.search(("a",), **kwargs), ties=False)
    finally:
        await client.aclose()


@pytest.mark.parametrize("server_kind", ["redis", "valkey", *FT_SERVERS])
def test_schema_1_data_is_refused_until_migrated(
    store_servers: StoreServers, server_kind: str
) -> None:
    client = redis.Redis.from_url(store_servers.url(server_kind))
    name = f"saold-{uuid.uuid4().hex[:10]}"
    try:
        # data as streamagent's first store layout wrote it: vectors as one string
        index = index_config(dims=8, fields=["text", "title"])
        embed = index["embed"]
        tag = "{" + name + ":u.ada}"
        vectors = embed.embed_documents(["black coffee", "morning"])
        client.set(f"{tag}:d:k", '0\n1\n1\n{"text":"black coffee","title":"morning"}')
        client.set(f"{tag}:v:k", np.asarray(vectors, np.float32).tobytes(), px=600_000)
        client.zadd(f"{tag}:idx", {"k": "inf"})
        client.set(f"{tag}:ver", "v1")
        client.zadd(f"{name}:namespaces", {"u.ada": "inf"})
        store = RedisStore(client, key_prefix=name, index=index)  # type: ignore[arg-type]
        with pytest.raises(StoreSchemaError, match="migrate_storage"):
            store.setup()
        assert store.migrate_storage() == 1
        store.setup()
        keys = store.keys_for(("u", "ada"))
        assert not client.exists(f"{tag}:v:k")
        assert client.hget(keys.vec("k"), "n") == b"2"
        assert 0 < client.pttl(keys.vec("k", 1)) <= 600_000
        hits = store.search(("u",), query="morning")
        assert hits[0].key == "k" and hits[0].score > 0.99  # max-pooled over both vectors
        client.set(f"{name}:schema", "3")
        with pytest.raises(StoreSchemaError, match="schema 3"):
            store.setup()
    finally:
        delete_store_keys(client, name)
        client.close()


@pytest.mark.parametrize("protocol", [2, 3])
def test_resp2_and_resp3_clients_search_the_index_alike(
    ft_url: str, prefix: str, protocol: int
) -> None:
    client = redis.Redis.from_url(ft_url, protocol=protocol)
    try:
        index = {"dims": DIMS, "embed": RandomEmbeddings(), "fields": ["text"]}
        server, exact = both(client, prefix, index)
        fill(server, random.Random(protocol), 40)
        for flt in (None, {"n": {"$gte": 4}}):
            kwargs = {"filter": flt, "query": "resp", "limit": 9, "offset": 3}
            assert_same(server.search(("b",), **kwargs), exact.search(("b",), **kwargs), ties=False)
        second = RedisStore(client, key_prefix=prefix, index=index)  # type: ignore[arg-type]
        second.setup()  # the existing index is read back (FT.INFO) and accepted
        assert second.search_path == "server"
    finally:
        client.close()
