"""The store in graphs: build_agent(store=...), create_agent_graph(...).compile(store=...),
nodes through get_store(), tools through langgraph.config.get_store(), and the default store
that follows the checkpointer."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypedDict

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import InjectedStore
from langgraph.store.base import BaseStore

from streamagent import astream_chunks, build_agent, create_agent_graph
from streamagent.memory import (
    AsyncRedisSaver,
    AsyncRedisStore,
    RedisSaver,
    RedisStore,
    StoreSchemaError,
)
from streamagent.memory.store_tools import memory_tools
from streamagent.testing import Reply, ToolCall
from tests.conftest import config_for
from tests.redis_fixtures import test_redis_url as redis_url_for_tests
from tests.store_fixtures import (
    index_config,
    make_store,
    rclient,
    store_prefix,
    store_servers,
    store_url,
)

__all__ = ["make_store", "rclient", "store_prefix", "store_servers", "store_url"]


def _tool_results(chunks: list[Any]) -> list[dict[str, Any]]:
    return [c.tool_result for c in chunks if c.type == "tool_result"]


async def test_agent_tools_remember_and_recall_across_threads(
    make_server: Any, make_store: Any
) -> None:
    store = make_store(index=index_config(fields=["text"]))
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("remember", {"fact": "Ada drinks black coffee"}, id="m1")]),
            "Noted.",
            Reply(tool_calls=[ToolCall("recall", {"query": "coffee"}, id="r1")]),
            "You drink black coffee.",
        ]
    )
    agent = build_agent(
        tools=memory_tools(), config=config_for(server), checkpointer=InMemorySaver(), store=store
    )
    assert agent.store is store
    user = {"user_id": "ada"}
    first = [
        c
        async for c in astream_chunks(
            agent, "I like black coffee", thread_id="t1", config={"configurable": user}
        )
    ]
    assert _tool_results(first)[0]["status"] == "success"
    assert [i.value for i in store.search(("memories", "ada"))] == [
        {"text": "Ada drinks black coffee"}
    ]
    second = [
        c
        async for c in astream_chunks(
            agent, "what do I drink?", thread_id="t2", config={"configurable": user}
        )
    ]
    recalled = _tool_results(second)[0]
    assert recalled["status"] == "success" and "black coffee" in recalled["content"]


def test_uncompiled_graph_compiles_with_the_store_and_sync_tools_reach_it(
    make_server: Any, make_store: Any
) -> None:
    store = make_store()
    server = make_server([Reply(tool_calls=[ToolCall("remember", {"fact": "likes tea"})]), "ok"])
    graph = create_agent_graph(tools=memory_tools(), config=config_for(server)).compile(store=store)
    graph.invoke({"messages": [("user", "remember tea")]}, {"configurable": {"user_id": "bob"}})
    assert [i.value for i in store.search(("memories", "bob"))] == [{"text": "likes tea"}]


class _State(TypedDict):
    user: str
    seen: int


def _count_visits(state: _State) -> dict[str, Any]:
    store = get_store()
    ns = ("visits", state["user"])
    item = store.get(ns, "count")
    seen = (item.value["n"] if item else 0) + 1
    store.put(ns, "count", {"n": seen})
    return {"seen": seen}


def test_nodes_reach_the_store_with_get_store(make_store: Any) -> None:
    store = make_store()
    graph = (
        StateGraph(_State)
        .add_node("count", _count_visits)
        .add_edge(START, "count")
        .compile(store=store)
    )
    assert graph.invoke({"user": "u1", "seen": 0})["seen"] == 1
    assert graph.invoke({"user": "u1", "seen": 0})["seen"] == 2
    assert store.get(("visits", "u1"), "count").value == {"n": 2}


async def test_async_store_in_an_async_graph(store_url: str, store_prefix: str) -> None:
    client = aioredis.Redis.from_url(store_url)
    try:
        store = AsyncRedisStore(client, key_prefix=store_prefix)
        await store.asetup()

        async def node(state: _State) -> dict[str, Any]:
            await get_store().aput(("a", state["user"]), "k", {"v": 1})
            return {"seen": len(await get_store().asearch(("a",)))}

        graph = StateGraph(_State).add_node("n", node).add_edge(START, "n").compile(store=store)
        assert (await graph.ainvoke({"user": "x", "seen": 0}))["seen"] == 1
    finally:
        await client.aclose()


def test_default_store_follows_the_checkpointer(
    make_server: Any, rclient: redis.Redis, tmp_path: Any, monkeypatch: Any, request: Any
) -> None:
    # without REDIS_URL the default saver starts an embedded server: keep it out of $HOME
    monkeypatch.setenv("STREAMAGENT_DATA_DIR", str(tmp_path / "data"))
    # the default stores' setup() marks the default key prefix's schema (on this test's
    # server and on the default Redis): leave no trace
    marker = "streamagent:store:schema"
    shared = redis.Redis.from_url(redis_url_for_tests())
    request.addfinalizer(shared.close)
    for client in (rclient, shared):
        if not client.exists(marker):
            request.addfinalizer(lambda c=client: c.delete(marker))
    server = make_server([])
    saver = RedisSaver(rclient, key_prefix="sa-agent-store-test")
    agent = build_agent(config=config_for(server), checkpointer=saver)
    assert isinstance(agent.store, RedisStore) and agent.store.client is rclient
    assert build_agent(config=config_for(server), checkpointer=False).store is None
    assert build_agent(config=config_for(server), checkpointer=InMemorySaver()).store is None
    assert build_agent(config=config_for(server), checkpointer=saver, store=False).store is None
    default = build_agent(config=config_for(server))
    assert isinstance(default.store, RedisStore)
    aclient = aioredis.Redis()
    asaver = AsyncRedisSaver(aclient, key_prefix="sa-agent-store-test")
    assert isinstance(
        build_agent(config=config_for(server), checkpointer=asaver).store, AsyncRedisStore
    )


async def test_the_async_default_store_sets_itself_up_on_its_first_batch(
    make_server: Any, store_url: str, store_prefix: str
) -> None:
    """``build_agent`` cannot await ``asetup()``: the ``AsyncRedisStore`` it makes for an
    async saver runs it before its first batch, once, however many batches start together."""
    aclient = aioredis.Redis.from_url(store_url)
    try:
        asaver = AsyncRedisSaver(aclient, key_prefix=f"{store_prefix}-saver")
        made = build_agent(config=config_for(make_server([])), checkpointer=asaver).store
        assert isinstance(made, AsyncRedisStore) and made.setup_on_first_use
        assert not made.is_set_up  # nothing was sent to Redis at build time

        setups = 0

        class Counting(AsyncRedisStore):
            async def asetup(self) -> None:
                nonlocal setups
                setups += 1
                await super().asetup()

        store = Counting(aclient, key_prefix=store_prefix, setup_on_first_use=True)
        await asyncio.gather(*(store.aput(("u", str(i)), "k", {"i": i}) for i in range(10)))
        assert setups == 1 and store.is_set_up
        assert await aclient.get(f"{store_prefix}:schema") == b"2"  # the schema was marked
        assert len(await store.asearch(("u",), limit=20)) == 10
    finally:
        await aclient.aclose()


async def test_a_first_batch_on_data_of_another_schema_fails_and_writes_nothing(
    store_url: str, store_prefix: str
) -> None:
    aclient = aioredis.Redis.from_url(store_url)
    try:
        await aclient.set(f"{store_prefix}:schema", "1")
        store = AsyncRedisStore(aclient, key_prefix=store_prefix, setup_on_first_use=True)
        for _ in range(2):  # not set up: the next batch checks again
            with pytest.raises(StoreSchemaError, match="schema"):
                await store.aput(("u",), "k", {"v": 1})
        assert not store.is_set_up
        assert [k async for k in aclient.scan_iter(f"*{store_prefix}*")] == [
            f"{store_prefix}:schema".encode()
        ]
    finally:
        await aclient.aclose()


async def test_a_tool_with_injected_store_reaches_the_redis_store(
    make_server: Any, make_store: Any
) -> None:
    """LangGraph's ``InjectedStore`` annotation works through the tool router (#16)."""

    @tool
    def save(note: str, store: Annotated[BaseStore, InjectedStore()]) -> str:
        """Save a note."""
        store.put(("notes",), "n1", {"text": note})
        return "saved"

    store = make_store()
    server = make_server([Reply(tool_calls=[ToolCall("save", {"note": "buy milk"})]), "Done."])
    agent = build_agent(
        tools=[save], config=config_for(server), checkpointer=InMemorySaver(), store=store
    )
    chunks = [c async for c in astream_chunks(agent, "note: buy milk", thread_id="n")]
    assert _tool_results(chunks)[0]["status"] == "success"
    assert store.get(("notes",), "n1").value == {"text": "buy milk"}
    sent = server.requests[0].tools[0]["function"]["parameters"]["properties"]
    assert "store" not in sent, "the injected argument is hidden from the model"
