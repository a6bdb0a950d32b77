"""RedisStore / AsyncRedisStore on real servers — plain Redis and Valkey (every test that
takes ``make_store`` / ``rclient`` runs on both): CRUD, filters, listing, semantic search,
bad input (typed errors, nothing stored), TTL and async parity."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from langgraph.store.base import GetOp, PutOp, SearchOp
from redis.crc import key_slot

from streamagent.errors import ConfigurationError, InvalidInputError, MemoryUnavailable
from streamagent.memory import AsyncRedisStore, RedisStore, StoreInputError, StoreNamespaceError
from tests.store_fixtures import (
    index_config,
    make_store,
    rclient,
    store_keys,
    store_prefix,
    store_servers,
    store_url,
)

__all__ = ["make_store", "rclient", "store_prefix", "store_servers", "store_url"]


def test_put_get_update_delete_keeps_created_at(make_store: Any) -> None:
    store = make_store()
    store.put(("users", "alice"), "profile", {"name": "Alice", "age": 31})
    first = store.get(("users", "alice"), "profile")
    assert first is not None and first.value == {"name": "Alice", "age": 31}
    assert first.namespace == ("users", "alice") and first.key == "profile"
    time.sleep(0.002)
    store.put(("users", "alice"), "profile", {"name": "Alice", "age": 32})
    second = store.get(("users", "alice"), "profile")
    assert second.value["age"] == 32
    assert second.created_at == first.created_at and second.updated_at > first.updated_at
    assert store.get(("users", "alice"), "missing") is None
    store.delete(("users", "alice"), "profile")
    assert store.get(("users", "alice"), "profile") is None


def test_keys_with_braces_and_colons_stay_distinct(make_store: Any, rclient: Any) -> None:
    store = make_store()
    store.put(("a}:d",), "k", {"v": 1})
    store.put(("a",), "}:d:k", {"v": 2})
    store.put(("x{y}",), "k{1}", {"v": 3})
    assert store.get(("a}:d",), "k").value == {"v": 1}
    assert store.get(("a",), "}:d:k").value == {"v": 2}
    assert store.get(("x{y}",), "k{1}").value == {"v": 3}
    # every key of one namespace hashes to one slot (Cluster: no CROSSSLOT)
    keys = store.keys_for(("x{y}",))
    slots = {key_slot(k.encode()) for k in (keys.idx, keys.ver, keys.doc("k{1}"), keys.vec("k{1}"))}
    assert len(slots) == 1


def test_search_prefix_filters_order_and_pages(make_store: Any) -> None:
    store = make_store()
    for i in range(6):
        ns = ("docs", "team-a" if i % 2 else "team-b")
        store.put(
            ns, f"d{i}", {"n": i, "kind": "report" if i < 4 else "memo", "meta": {"lang": "en"}}
        )
        time.sleep(0.001)
    store.put(("other",), "x", {"n": 100, "kind": "report"})
    everything = store.search(("docs",), limit=50)
    assert [i.key for i in everything] == ["d5", "d4", "d3", "d2", "d1", "d0"]  # newest first
    assert [i.key for i in store.search(("docs",), limit=2, offset=1)] == ["d4", "d3"]
    assert {i.key for i in store.search(("docs", "team-a"))} == {"d1", "d3", "d5"}
    assert {i.key for i in store.search(("docs",), filter={"kind": "report"})} == {
        "d0",
        "d1",
        "d2",
        "d3",
    }
    ranged = store.search(("docs",), filter={"n": {"$gte": 2, "$lt": 5}, "kind": {"$ne": "memo"}})
    assert {i.key for i in ranged} == {"d2", "d3"}
    assert {i.key for i in store.search(("docs",), filter={"n": {"$gt": 3}})} == {"d4", "d5"}
    assert {i.key for i in store.search(("docs",), filter={"n": {"$lte": 0}})} == {"d0"}
    assert {i.key for i in store.search(("docs",), filter={"n": {"$eq": 1}})} == {"d1"}
    assert len(store.search(("docs",), filter={"meta": {"lang": "en"}})) == 6
    assert store.search(("docs",), filter={"missing": {"$gt": 1}}) == []
    assert len(store.search((), limit=100)) == 7


def test_list_namespaces_prefix_suffix_depth_pages(make_store: Any) -> None:
    store = make_store()
    for ns in [("a", "x", "v1"), ("a", "y", "v1"), ("a", "y", "v2"), ("b", "x"), ("c",)]:
        store.put(ns, "k", {"v": 1})
    assert store.list_namespaces() == [
        ("a", "x", "v1"),
        ("a", "y", "v1"),
        ("a", "y", "v2"),
        ("b", "x"),
        ("c",),
    ]
    assert store.list_namespaces(prefix=("a",)) == [
        ("a", "x", "v1"),
        ("a", "y", "v1"),
        ("a", "y", "v2"),
    ]
    assert store.list_namespaces(suffix=("v1",)) == [("a", "x", "v1"), ("a", "y", "v1")]
    assert store.list_namespaces(prefix=("a", "*", "v2")) == [("a", "y", "v2")]
    assert store.list_namespaces(max_depth=1) == [("a",), ("b",), ("c",)]
    assert store.list_namespaces(max_depth=2, limit=2, offset=1) == [("a", "y"), ("b", "x")]
    store.delete(("c",), "k")
    assert ("c",) not in store.list_namespaces()
    # on a single node an emptied namespace leaves the registry at once
    assert store.client.zscore(store.registry_key, "c") is None
    assert store.client.zscore(store.registry_key, "a.x.v1") is not None


def test_semantic_search_ranks_and_combines_with_filters(make_store: Any) -> None:
    store = make_store(index=index_config(fields=["text"]))
    store.put(("mem", "u1"), "coffee", {"text": "likes black coffee in the morning", "n": 1})
    store.put(("mem", "u1"), "tea", {"text": "drinks green tea", "n": 2})
    store.put(("mem", "u1"), "oslo", {"text": "lives in rainy Oslo", "n": 3})
    store.put(("mem", "u1"), "raw", {"text": "coffee coffee", "n": 4}, index=False)
    hits = store.search(("mem",), query="black coffee", limit=3)
    assert hits[0].key == "coffee" and hits[0].score is not None
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    filtered = store.search(("mem",), query="black coffee", filter={"n": {"$gte": 2}}, limit=10)
    assert [h.key for h in filtered][:2] != ["coffee"] and "coffee" not in {h.key for h in filtered}
    # the unindexed item only fills up when fewer scored items than the limit exist
    assert filtered[-1].key == "raw" and filtered[-1].score is None
    ranked = [h.key for h in store.search(("mem",), query="coffee", limit=10)]
    assert [h.key for h in store.search(("mem",), query="coffee", limit=2, offset=1)] == ranked[1:3]
    # per-put index paths override the configured fields
    store.put(("mem", "u2"), "p", {"title": "rainy Oslo", "text": "unrelated"}, index=["title"])
    assert store.search(("mem", "u2"), query="rainy Oslo")[0].score > 0.9


def test_semantic_search_sees_writes_of_another_client(make_store: Any) -> None:
    one, two = make_store(index=index_config()), make_store(index=index_config())
    one.put(("m",), "a", {"text": "apples"})
    assert [h.key for h in two.search(("m",), query="apples")] == ["a"]
    one.put(("m",), "b", {"text": "bananas"})
    assert two.search(("m",), query="bananas")[0].key == "b"  # the cache follows the version
    one.delete(("m",), "b")
    assert [h.key for h in two.search(("m",), query="bananas")] == ["a"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.put((), "k", {"v": 1}), StoreNamespaceError),
        (lambda s: s.put(("a.b",), "k", {"v": 1}), StoreNamespaceError),
        (lambda s: s.put(("a", ""), "k", {"v": 1}), StoreNamespaceError),
        (lambda s: s.batch([PutOp(("a.b",), "k", {"v": 1})]), StoreNamespaceError),
        (lambda s: s.put(("a",), "k", {"v": object()}), StoreInputError),
        (lambda s: s.put(("a",), "k", {"v": float("nan")}), StoreInputError),
        (lambda s: s.batch([PutOp(("a",), "k", ["not", "a", "dict"])]), StoreInputError),  # type: ignore[arg-type]
        (lambda s: s.search(("a",), filter={"n": {"$regex": "x"}}), StoreInputError),
        (lambda s: s.search(("a",), filter={"n": {"$gt": "x"}}), StoreInputError),
        (lambda s: s.search(("a",), query="anything"), StoreInputError),
        (lambda s: s.put(("a",), "k", {"v": 1}, ttl=-1), StoreInputError),
        (lambda s: s.search(("a",), limit=-1), StoreInputError),
    ],
)
def test_bad_input_is_a_typed_error_and_stores_nothing(
    make_store: Any, rclient: Any, store_prefix: str, call: Any, error: type
) -> None:
    store = make_store()
    with pytest.raises(error) as info:
        call(store)
    assert isinstance(info.value, InvalidInputError) and isinstance(info.value, ValueError)
    assert store_keys(rclient, store_prefix) == []


def test_a_batch_with_one_bad_op_stores_nothing(
    make_store: Any, rclient: Any, store_prefix: str
) -> None:
    store = make_store()
    with pytest.raises(StoreInputError):
        store.batch([PutOp(("good",), "k", {"v": 1}), PutOp(("bad",), "k", {"v": {1, 2}})])  # type: ignore[dict-item]
    assert store_keys(rclient, store_prefix) == []


def test_batch_reads_before_writes_and_last_put_wins(make_store: Any) -> None:
    store = make_store()
    store.put(("n",), "k", {"v": 0})
    results = store.batch(
        [
            PutOp(("n",), "k", {"v": 1}),
            GetOp(("n",), "k"),
            PutOp(("n",), "k", {"v": 2}),
            SearchOp(("n",)),
        ]
    )
    assert results[1].value == {"v": 0} and results[3][0].value == {"v": 0}
    assert store.get(("n",), "k").value == {"v": 2}


def test_unreachable_redis_is_a_run_time_error() -> None:
    with RedisStore.from_url(
        "redis://127.0.0.1:1/0", connection_options={"socket_connect_timeout": 0.2}
    ) as store:
        with pytest.raises(MemoryUnavailable, match="cannot reach"):
            store.put(("a",), "k", {"v": 1})


# --------------------------------------------------------------------------- TTL
TTL_MIN = 0.004  # 240 ms


def _wait_gone(store: Any, ns: tuple[str, ...], key: str) -> None:
    deadline = time.monotonic() + 10
    while store.get(ns, key, refresh_ttl=False) is not None:
        assert time.monotonic() < deadline, "item did not expire"
        time.sleep(0.05)


def test_ttl_expires_every_key_of_the_item_and_of_an_emptied_namespace(
    make_store: Any, rclient: Any, store_prefix: str
) -> None:
    store = make_store(index=index_config())
    store.put(("t",), "short", {"text": "short lived"}, ttl=TTL_MIN)
    store.put(("keep",), "long", {"text": "stays"})
    keys = store.keys_for(("t",))
    ttls = [rclient.pttl(k) for k in (keys.doc("short"), keys.vec("short"), keys.idx, keys.ver)]
    assert all(0 < t <= TTL_MIN * 60_000 for t in ttls), ttls
    assert rclient.pttl(store.keys_for(("keep",)).doc("long")) == -1
    _wait_gone(store, ("t",), "short")
    assert store.search(("t",)) == [] and store.search(("t",), query="short lived") == []
    assert store.list_namespaces() == [("keep",)]
    time.sleep(0.05)
    assert [
        k for k in store_keys(rclient, store_prefix) if b"{" + store_prefix.encode() + b":t}" in k
    ] == []


def test_mixed_ttl_namespace_lives_as_long_as_its_last_item(make_store: Any, rclient: Any) -> None:
    store = make_store()
    store.put(("m",), "forever", {"v": 1})
    store.put(("m",), "brief", {"v": 2}, ttl=TTL_MIN)
    keys = store.keys_for(("m",))
    assert rclient.pttl(keys.idx) == -1
    _wait_gone(store, ("m",), "brief")
    assert [i.key for i in store.search(("m",))] == ["forever"]
    store.delete(("m",), "forever")
    assert not rclient.exists(keys.idx, keys.ver)


def test_default_ttl_and_refresh_on_read(make_store: Any, rclient: Any) -> None:
    store = make_store(ttl={"default_ttl": 1.0, "refresh_on_read": True})
    store.put(("r",), "k", {"v": 1})
    doc = store.keys_for(("r",)).doc("k")
    assert 55_000 < rclient.pttl(doc) <= 60_000
    rclient.pexpire(doc, 5_000)
    store.get(("r",), "k", refresh_ttl=False)
    assert rclient.pttl(doc) <= 5_000
    store.get(("r",), "k")  # refresh_on_read default
    assert rclient.pttl(doc) > 55_000
    rclient.pexpire(doc, 5_000)
    store.search(("r",))
    assert rclient.pttl(doc) > 55_000
    never = make_store(ttl={"default_ttl": 1.0, "refresh_on_read": False})
    never.put(("r",), "k2", {"v": 1})
    doc2 = never.keys_for(("r",)).doc("k2")
    rclient.pexpire(doc2, 5_000)
    never.get(("r",), "k2")
    assert rclient.pttl(doc2) <= 5_000


def test_refresh_keeps_item_alive_past_its_first_deadline(make_store: Any) -> None:
    store = make_store()
    store.put(("a",), "k", {"v": 1}, ttl=0.01)  # 600 ms
    for _ in range(6):
        time.sleep(0.2)
        assert store.get(("a",), "k") is not None  # refreshed each time
    _wait_gone(store, ("a",), "k")


# --------------------------------------------------------------------------- async
async def test_async_store_matches_sync_store(
    store_url: str, store_prefix: str, rclient: Any
) -> None:
    client = aioredis.Redis.from_url(store_url)
    try:
        astore = AsyncRedisStore(client, key_prefix=store_prefix, index=index_config())
        await astore.asetup()
        sync = RedisStore(rclient, key_prefix=store_prefix, index=index_config())
        await astore.aput(("u", "1"), "a", {"text": "red apple", "n": 1})
        await astore.aput(("u", "2"), "b", {"text": "green pear", "n": 2}, ttl=5)
        assert (await astore.aget(("u", "1"), "a")).value == sync.get(("u", "1"), "a").value
        assert [i.key for i in await astore.asearch(("u",))] == [i.key for i in sync.search(("u",))]
        assert [i.key for i in await astore.asearch(("u",), query="apple")][0] == "a"
        assert await astore.alist_namespaces() == sync.list_namespaces() == [("u", "1"), ("u", "2")]
        # the sync API of the async store works from another thread while the loop runs
        box: list[Any] = []
        thread = threading.Thread(target=lambda: box.append(astore.get(("u", "1"), "a")))
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.01)
        assert box[0].value["text"] == "red apple"
        with pytest.raises(ConfigurationError):
            astore.get(("u", "1"), "a")  # on the loop's own thread: refused, no deadlock
        await astore.adelete(("u", "1"), "a")
        assert await astore.aget(("u", "1"), "a") is None
        with pytest.raises(StoreNamespaceError):
            await astore.aput(("x.y",), "k", {})
    finally:
        await client.aclose()


async def test_sync_store_async_methods(make_store: Any) -> None:
    store = make_store()
    await store.aput(("s",), "k", {"v": 1})
    assert (await store.aget(("s",), "k")).value == {"v": 1}
    assert await store.alist_namespaces() == [("s",)]


def test_cached_snapshots_never_return_items_that_expired_since(make_store: Any) -> None:
    store = make_store(index=index_config())
    store.put(("c",), "brief", {"text": "fleeting thought", "kind": "x"}, ttl=TTL_MIN)
    store.put(("c",), "stays", {"text": "lasting thought", "kind": "x"})
    # load both caches (items and vectors) while the item lives
    assert {i.key for i in store.search(("c",), filter={"kind": "x"})} == {"brief", "stays"}
    assert store.search(("c",), query="fleeting thought")[0].key == "brief"
    _wait_gone(store, ("c",), "brief")
    assert [i.key for i in store.search(("c",), filter={"kind": "x"})] == ["stays"]
    assert [i.key for i in store.search(("c",), query="fleeting thought")] == ["stays"]
    assert [i.key for i in store.search(("c",), query="fleeting", filter={"kind": "x"})] == [
        "stays"
    ]


def test_scripts_are_reloaded_after_the_server_lost_them(tmp_path: Any) -> None:
    from streamagent.memory import EmbeddedRedis

    with EmbeddedRedis(data_dir=tmp_path / "redis") as server:
        assert server.url is not None
        with RedisStore.from_url(server.url) as store:
            store.setup()
            store.put(("s",), "k", {"v": 1})
            store.client.script_flush()
            store.put(("s",), "k2", {"v": 2})  # NOSCRIPT -> load, retry
            assert [i.key for i in store.search(("s",))] == ["k2", "k"]


def test_setup_reports_no_server_vector_index_on_plain_redis(make_store: Any) -> None:
    # Redis 6.2/7.0 without modules: FT._LIST is an unknown command; the exact path is used
    store = make_store(index=index_config())
    assert (store.server_vector_index, store.search_path) == (False, "exact")


def test_a_decoding_client_is_refused() -> None:
    import redis as redis_module

    from streamagent.errors import ConfigurationError as ConfigError

    with pytest.raises(ConfigError, match="decode_responses"):
        RedisStore(redis_module.Redis(decode_responses=True))
    with pytest.raises(ConfigError, match="braces"):
        RedisStore(redis_module.Redis(), key_prefix="a{b}")
