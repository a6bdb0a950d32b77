"""Differential test: random sequences of put/get/delete/search/list_namespaces give the same
results on RedisStore, AsyncRedisStore and LangGraph's InMemoryStore — on plain Redis, on
Valkey, and on Redis 8.2 and Valkey 8.1 with a vector index (there the Redis stores'
semantic searches go through the server's index).

Differences by design, compared accordingly:
* order of plain searches: the Redis stores return newest ``updated_at`` first (as
  ``PostgresStore``), ``InMemoryStore`` insertion order — full result sets are compared as
  sets, pages by size and against the Redis store's own full ordering;
* scores: float32 vs float64, compared with a tolerance and by order;
* ``InMemoryStore`` keeps the old vector of an item re-put with ``index=False``; the reference
  drops it (the item is no longer indexed);
* ``InMemoryStore`` lists namespaces that only ever saw a ``get`` or were emptied by deletes;
  the reference listing drops those (a namespace exists while it holds an item).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langgraph.store.memory import InMemoryStore

from streamagent.memory import AsyncRedisStore, RedisStore
from tests.store_fixtures import StoreServers, delete_store_keys, index_config, store_servers

__all__ = ["store_servers"]

LABELS = st.sampled_from(["a", "b", "c"])
NAMESPACES = st.lists(LABELS, min_size=1, max_size=3).map(tuple)
PREFIXES = st.lists(LABELS, min_size=0, max_size=2).map(tuple)
KEYS = st.sampled_from(["k1", "k2", "k3"])
WORDS = st.sampled_from(["apple", "pear", "red", "green", "tea", "coffee"])
VALUES = st.fixed_dictionaries(
    {
        "n": st.integers(0, 2),
        "s": st.sampled_from(["x", "y"]),
        "text": st.lists(WORDS, min_size=1, max_size=3).map(" ".join),
    },
    optional={"meta": st.fixed_dictionaries({"tag": st.sampled_from(["t1", "t2"])})},
)
FILTERS = st.one_of(
    st.none(),
    st.fixed_dictionaries({"s": st.sampled_from(["x", "y"])}),
    st.fixed_dictionaries(
        {
            "n": st.fixed_dictionaries(
                {},
                optional={
                    "$gt": st.integers(0, 2),
                    "$gte": st.integers(0, 2),
                    "$lt": st.integers(0, 2),
                    "$lte": st.integers(0, 2),
                    "$ne": st.integers(0, 2),
                    "$eq": st.integers(0, 2),
                },
            )
        }
    ),
    st.fixed_dictionaries({"meta": st.fixed_dictionaries({"tag": st.sampled_from(["t1", "t2"])})}),
)
PUTS = st.tuples(st.just("put"), NAMESPACES, KEYS, VALUES, st.sampled_from([None, False]))
OPS = st.one_of(
    PUTS,
    st.tuples(st.just("delete"), NAMESPACES, KEYS),
    st.tuples(st.just("get"), NAMESPACES, KEYS),
    st.tuples(st.just("search"), PREFIXES, FILTERS, st.integers(1, 6), st.integers(0, 3)),
    st.tuples(
        st.just("search"), PREFIXES, FILTERS.filter(bool), st.integers(1, 6), st.integers(0, 3)
    ),
    st.tuples(
        st.just("query"), PREFIXES, FILTERS, st.lists(WORDS, min_size=1, max_size=2).map(" ".join)
    ),
    st.tuples(
        st.just("list"),
        PREFIXES,
        st.sampled_from([(), ("a",), ("b", "*")]),
        st.sampled_from([None, 1, 2]),
        st.integers(1, 5),
        st.integers(0, 2),
    ),
)


def _run(store: Any, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "put":
        _, ns, key, value, index = op
        store.put(ns, key, value, index=index)
        if isinstance(store, InMemoryStore) and index is False:
            # InMemoryStore keeps the vector of an earlier indexed put; the item is no
            # longer indexed, so it is not scored (as the Redis stores do)
            store._vectors[ns].pop(key, None)
        return None
    if kind == "delete":
        store.delete(op[1], op[2])
        return None
    if kind == "get":
        item = store.get(op[1], op[2])
        return None if item is None else item.value
    if kind == "search":
        _, prefix, flt, limit, offset = op
        page = store.search(prefix, filter=flt, limit=limit, offset=offset)
        full = store.search(prefix, filter=flt, limit=1000)
        return [(i.namespace, i.key, i.value) for i in page], [
            (i.namespace, i.key, i.value) for i in full
        ]
    if kind == "query":
        _, prefix, flt, query = op
        return [
            (i.namespace, i.key, i.value, i.score)
            for i in store.search(prefix, filter=flt, query=query, limit=1000)
        ]
    _, prefix, suffix, depth, limit, offset = op
    return store.list_namespaces(
        prefix=prefix or None, suffix=suffix or None, max_depth=depth, limit=limit, offset=offset
    )


async def _arun_native(store: AsyncRedisStore, op: tuple[Any, ...]) -> Any:
    kind = op[0]
    if kind == "put":
        _, ns, key, value, index = op
        await store.aput(ns, key, value, index=index)
        return None
    if kind == "delete":
        await store.adelete(op[1], op[2])
        return None
    if kind == "get":
        item = await store.aget(op[1], op[2])
        return None if item is None else item.value
    if kind == "search":
        _, prefix, flt, limit, offset = op
        page = await store.asearch(prefix, filter=flt, limit=limit, offset=offset)
        full = await store.asearch(prefix, filter=flt, limit=1000)
        return [(i.namespace, i.key, i.value) for i in page], [
            (i.namespace, i.key, i.value) for i in full
        ]
    if kind == "query":
        _, prefix, flt, query = op
        return [
            (i.namespace, i.key, i.value, i.score)
            for i in await store.asearch(prefix, filter=flt, query=query, limit=1000)
        ]
    _, prefix, suffix, depth, limit, offset = op
    return await store.alist_namespaces(
        prefix=prefix or None, suffix=suffix or None, max_depth=depth, limit=limit, offset=offset
    )


def _reference_list(mem: InMemoryStore, op: tuple[Any, ...]) -> Any:
    for ns in [ns for ns, items in mem._data.items() if not items]:
        del mem._data[ns]
    return _run(mem, op)


def _by_key(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _check(op: tuple[Any, ...], mine: Any, theirs: Any, ref: Any) -> None:
    kind = op[0]
    if kind in ("put", "delete", "get", "list"):
        assert mine == theirs == ref, (op, mine, theirs, ref)
        return
    if kind == "search":
        (page, full), (apage, afull), (rpage, rfull) = mine, theirs, ref
        assert page == apage and full == afull, op
        assert _by_key(full) == _by_key(rfull), (op, full, rfull)
        _, _, _, limit, offset = op
        assert page == full[offset : offset + limit] and len(page) == len(rpage), op
        return
    assert _by_key([r[:3] for r in mine]) == _by_key([r[:3] for r in ref]), (op, mine, ref)
    assert [r[:3] for r in mine] == [r[:3] for r in theirs]
    ref_scores = {(r[0], r[1]): r[3] for r in ref}
    for row in mine:
        expected = ref_scores[(row[0], row[1])]
        assert (row[3] is None) == (expected is None), (op, row, expected)
        if expected is not None:
            assert abs(row[3] - expected) < 1e-4, (op, row, expected)
    scored = [r[3] for r in mine if r[3] is not None]
    assert scored == sorted(scored, reverse=True)
    assert all(r[3] is None for r in mine[len(scored) :])  # unscored items only fill the end


@pytest.mark.parametrize(
    ("server", "search_path"),
    [("redis", "exact"), ("valkey", "exact"), ("search", "server"), ("valkey-ft", "server")],
)
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(PUTS, min_size=2, max_size=12), st.lists(OPS, min_size=1, max_size=25))
def test_redis_stores_behave_like_in_memory_store(
    store_servers: StoreServers,
    server: str,
    search_path: str,
    puts: list[tuple[Any, ...]],
    more: list[tuple[Any, ...]],
) -> None:
    ops = puts + more
    prefix = f"sadiff-{uuid.uuid4().hex[:10]}"
    url = store_servers.url(server)
    client = redis.Redis.from_url(url)
    try:
        sync = RedisStore(client, key_prefix=prefix, index=index_config(fields=["text"]))
        sync.setup()
        assert sync.search_path == search_path
        mem = InMemoryStore(index=index_config(fields=["text"]))  # type: ignore[arg-type]

        async def scenario() -> None:
            aclient = aioredis.Redis.from_url(url)
            try:
                astore = AsyncRedisStore(
                    aclient, key_prefix=prefix + "-a", index=index_config(fields=["text"])
                )
                await astore.asetup()
                assert astore.search_path == search_path
                for op in ops:
                    mine = _run(sync, op)
                    theirs = await _arun_native(astore, op)
                    ref = _reference_list(mem, op) if op[0] == "list" else _run(mem, op)
                    _check(op, mine, theirs, ref)
            finally:
                await aclient.aclose()

        asyncio.run(scenario())
    finally:
        delete_store_keys(client, prefix)
        delete_store_keys(client, prefix + "-a")
        client.close()
