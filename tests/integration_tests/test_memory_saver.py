"""RedisSaver / AsyncRedisSaver behaviour on a real Redis: TTL, keep_last, deletion, dedup,
strict deserialization, failures and recovery, concurrency."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import START, MessagesState, StateGraph
from redis.backoff import NoBackoff
from redis.retry import Retry

from streamagent.errors import ConfigurationError, MemoryUnavailable, ThreadExpiredError
from streamagent.memory import (
    AsyncRedisSaver,
    EmbeddedRedis,
    RedisSaver,
    UnsafeDeserializationError,
)
from streamagent.memory.embedded import free_port
from streamagent.memory.keys import ThreadKeys
from tests.redis_fixtures import *  # noqa: F403


def _chat_graph(saver: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node(
        "model", lambda s: {"messages": [AIMessage(f"reply {len(s['messages'])} " * 20)]}
    )
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def _turns(graph: Any, thread: str, n: int) -> None:
    for i in range(n):
        graph.invoke(
            {"messages": [HumanMessage(f"question {i} " * 20)]},
            {"configurable": {"thread_id": thread}},
        )


def _referenced(client: redis.Redis, keys: ThreadKeys) -> set[bytes]:
    """Message refs referenced by the thread's blobs and writes (raw storage format)."""
    payloads = []
    for value in client.hvals(keys.blobs):
        if value[:2] in (b"R\x00", b"D\x00"):
            payloads.append(value.split(b"\x00", 2)[-1] if value[:1] == b"D" else value[2:])
    for value in client.hvals(keys.w):
        if value[:2] == b"R\x00":
            payloads.append(value.split(b"\x00", 3)[3])
    return {p[i : i + 24] for p in payloads for i in range(0, len(p), 24)}


def _thread_keys(client: redis.Redis, saver: RedisSaver, thread: str) -> list[bytes]:
    """The thread's data keys that exist (not its tombstone or turn lock)."""
    return [k for k in saver.data_keys(thread) if client.exists(k)]


def test_every_key_of_a_thread_gets_the_ttl_and_writes_renew_it(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync", ttl_seconds=100)
    graph = _chat_graph(saver)
    _turns(graph, "t", 1)
    keys = _thread_keys(sync_client, saver, "t")
    assert len(keys) >= 6
    for key in keys:
        sync_client.expire(key, 10)
    _turns(graph, "t", 1)
    assert all(90 < sync_client.ttl(k) <= 100 for k in _thread_keys(sync_client, saver, "t"))


def test_thread_expires_after_ttl_and_reads_renew_only_when_asked(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    plain = make_saver("sync", ttl_seconds=1)
    refreshing = make_saver("sync", ttl_seconds=1, refresh_ttl_on_read=True)
    _turns(_chat_graph(plain), "gone", 1)
    _turns(_chat_graph(plain), "kept", 1)
    for _ in range(3):
        time.sleep(0.45)
        assert refreshing.get_tuple({"configurable": {"thread_id": "kept"}}) is not None
    # an expired thread is a typed notice, never an empty thread; also for a saver (another
    # process) that never saw it: the tombstone outlives the data
    with pytest.raises(ThreadExpiredError, match="expired"):
        plain.get_tuple({"configurable": {"thread_id": "gone"}})
    assert _thread_keys(sync_client, plain, "gone") == []
    other = make_saver("sync", ttl_seconds=1)
    with pytest.raises(ThreadExpiredError) as info:
        _chat_graph(other).invoke(
            {"messages": [HumanMessage("again")]}, {"configurable": {"thread_id": "gone"}}
        )
    assert info.value.reason == "expired" and info.value.thread_id == "gone"
    plain.delete_thread("gone")  # acknowledges the notice: the id starts over
    assert plain.get_tuple({"configurable": {"thread_id": "gone"}}) is None


def test_keep_last_keeps_newest_checkpoints_and_drops_unreferenced_data(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync", keep_last=2)
    graph = _chat_graph(saver)
    _turns(graph, "t", 5)
    config = {"configurable": {"thread_id": "t"}}
    assert len(list(saver.list(config))) == 2
    assert len(graph.get_state(config).values["messages"]) == 10
    keys = saver.keys_for("t")
    # the 10 messages of the state + inputs (still without ids) in the kept checkpoints'
    # writes, nothing else; an unbounded thread also keeps every older input
    stored = set(sync_client.hkeys(keys.msgs))
    assert stored == _referenced(sync_client, keys) and 10 <= len(stored) <= 12
    unbounded = make_saver("sync")
    _turns(_chat_graph(unbounded), "u", 5)
    assert sync_client.hlen(unbounded.keys_for("u").msgs) > len(stored) + 2
    graph.update_state(config, {"messages": [AIMessage("x", id="x")]})
    assert set(sync_client.hkeys(keys.msgs)) == _referenced(sync_client, keys)
    shallow = make_saver("sync", keep_last=1)
    _turns(_chat_graph(shallow), "s", 3)
    assert len(list(shallow.list({"configurable": {"thread_id": "s"}}))) == 1
    blob_fields = sync_client.hkeys(shallow.keys_for("s").blobs)
    assert len(blob_fields) <= 6


def test_delete_thread_leaves_no_key(make_saver: Any, sync_client: redis.Redis) -> None:
    saver = make_saver("sync")
    _turns(_chat_graph(saver), "t", 2)
    _turns(_chat_graph(saver), "other", 1)
    saver.delete_thread("t")
    assert _thread_keys(sync_client, saver, "t") == []
    # only the short "deleted" tombstone is left
    assert list(sync_client.scan_iter(match=f"{{{saver.key_prefix}:t}}*")) == [
        saver.keys_for("t").seen.encode()
    ]
    assert sync_client.hget(saver.keys_for("t").seen, "s") == b"0"
    assert 0 < sync_client.ttl(saver.keys_for("t").seen) <= saver.expiry_notice_seconds
    assert saver.get_tuple({"configurable": {"thread_id": "other"}}) is not None
    _turns(_chat_graph(saver), "t", 1)  # reuse after delete (delta bases forgotten)
    assert (
        len(_chat_graph(saver).get_state({"configurable": {"thread_id": "t"}}).values["messages"])
        == 2
    )


def test_each_message_is_stored_once_and_storage_grows_linearly(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync")
    graph = _chat_graph(saver)
    sizes = []
    for n in (10, 10):
        _turns(graph, "t", n)
        sizes.append(sum(sync_client.memory_usage(k) or 0 for k in saver.keys_for("t")))
    # each message at most twice (as its node wrote it, before add_messages gave it an id,
    # and as it is in the state), never once per checkpoint (60 checkpoints here)
    assert 40 <= sync_client.hlen(saver.keys_for("t").msgs) <= 80
    assert sizes[1] < 2.6 * sizes[0]  # linear: ~2x for twice the turns (quadratic: ~4x)


def test_a_second_process_without_delta_bases_reads_and_extends_the_thread(make_saver: Any) -> None:
    first, second = make_saver("sync"), make_saver("sync")
    _turns(_chat_graph(first), "t", 3)
    _turns(_chat_graph(second), "t", 2)
    _turns(_chat_graph(first), "t", 1)
    messages = (
        _chat_graph(second).get_state({"configurable": {"thread_id": "t"}}).values["messages"]
    )
    assert [m.type for m in messages] == ["human", "ai"] * 6


def test_unknown_types_are_refused_with_a_clear_error(make_saver: Any) -> None:
    class Custom:
        def __init__(self, value: int) -> None:
            self.value = value

    saver = make_saver("sync")
    ck = empty_checkpoint()
    ck["id"] = str(uuid6())
    ck["channel_values"] = {"money": Decimal("1.10"), "obj": Path("/x")}
    ck["channel_versions"] = {"money": "1", "obj": "1"}
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    saver.put(config, ck, {}, {"money": "1", "obj": "1"})
    assert saver.get_tuple(config).checkpoint["channel_values"]["money"] == Decimal("1.10")
    from pydantic import BaseModel

    class Secret(BaseModel):
        x: int = 1

    ck2 = empty_checkpoint()
    ck2["id"] = str(uuid6())
    ck2["channel_values"] = {"obj": Secret()}
    ck2["channel_versions"] = {"obj": "2"}
    saver.put(config, ck2, {}, {"obj": "2"})
    with pytest.raises(UnsafeDeserializationError, match="Secret"):
        saver.get_tuple(config)


def test_redis_down_raises_memory_unavailable_naming_host_not_password(key_prefix: str) -> None:
    port = free_port()
    with RedisSaver.from_url(
        f"redis://:hunter2@127.0.0.1:{port}/0", key_prefix=key_prefix
    ) as saver:
        ck = empty_checkpoint()
        with pytest.raises(MemoryUnavailable) as info:
            saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, ck, {}, {})
        assert f"127.0.0.1:{port}" in str(info.value)
        assert "hunter2" not in str(info.value)
        assert "nothing was saved" in str(info.value)
        with pytest.raises(MemoryUnavailable):
            saver.get_tuple({"configurable": {"thread_id": "t"}})


def test_saver_recovers_when_redis_comes_back(tmp_path: Path, key_prefix: str) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "r")
    url = server.start()
    try:
        with RedisSaver.from_url(url, key_prefix=key_prefix) as saver:
            saver.setup()
            graph = _chat_graph(saver)
            _turns(graph, "t", 1)
            server.stop()
            with pytest.raises(MemoryUnavailable):
                _turns(graph, "t", 1)
            server.start()
            _turns(graph, "t", 1)
            state = graph.get_state({"configurable": {"thread_id": "t"}})
            assert len(state.values["messages"]) == 4
    finally:
        server.stop()


def test_setup_refuses_a_prefix_with_another_schema(
    make_saver: Any, sync_client: redis.Redis, key_prefix: str
) -> None:
    saver = make_saver("sync")
    sync_client.set(saver.schema_key(), "999")
    with pytest.raises(ConfigurationError, match="schema"):
        saver.setup()


def test_concurrent_turns_on_many_threads_and_two_writers_on_one(make_saver: Any) -> None:
    saver = make_saver("sync")
    graph = _chat_graph(saver)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: _turns(graph, f"t{i}", 3), range(8)))
    for i in range(8):
        assert (
            len(graph.get_state({"configurable": {"thread_id": f"t{i}"}}).values["messages"]) == 6
        )
    other = _chat_graph(make_saver("sync"))
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda g: _turns(g, "shared", 5), [graph, other]))
    config = {"configurable": {"thread_id": "shared"}}
    history = list(saver.list(config))
    assert len(history) == 30  # 3 per turn: every checkpoint of both writers kept, none torn
    for item in history:
        messages = item.checkpoint["channel_values"].get("messages", [])
        assert all(m.content for m in messages)


async def test_async_saver_serves_astream_and_its_sync_bridge_works_from_other_threads(
    make_saver: Any,
) -> None:
    saver = make_saver("async", ttl_seconds=60)
    await saver.asetup()
    graph = _chat_graph(saver)
    config = {"configurable": {"thread_id": "t"}}
    async for _ in graph.astream({"messages": [HumanMessage("hi")]}, config):
        pass
    with pytest.raises(ConfigurationError, match="async methods"):
        saver.get_tuple(config)
    found = await asyncio.to_thread(saver.get_tuple, config)
    assert found is not None and len(found.checkpoint["channel_values"]["messages"]) == 2
    sync_reader = make_saver("sync")
    assert len(_chat_graph(sync_reader).get_state(config).values["messages"]) == 2


def test_constructors_do_no_io_and_validate_options() -> None:
    client = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.1)
    RedisSaver(client)  # no server there: no error until used
    for bad in ({"keep_last": 0}, {"ttl_seconds": 0}, {"key_prefix": "a{b"}):
        with pytest.raises(ConfigurationError):
            RedisSaver(client, **bad)
    assert threading.active_count() >= 1


def test_setup_migrates_a_schema_1_prefix(make_saver: Any, sync_client: redis.Redis) -> None:
    saver = make_saver("sync", keep_last=3)
    graph = _chat_graph(saver)
    _turns(graph, "m", 3)
    _turns(graph, "n", 1)
    before = graph.get_state({"configurable": {"thread_id": "m"}}).values["messages"]
    for thread in ("m", "n"):  # back to schema 1: no head/manifest/tombstone, bare refs
        keys = saver.keys_for(thread)
        sync_client.delete(keys.head, keys.seen, keys.turn)
        for field, value in sync_client.hgetall(keys.refs).items():
            sync_client.hset(keys.refs, field, value.split(b"\x02", 1)[1])
    sync_client.set(saver.schema_key(), "1")
    fresh = make_saver("sync", keep_last=3)  # its setup() migrates
    assert sync_client.get(saver.schema_key()) == b"2"
    graph = _chat_graph(fresh)
    assert graph.get_state({"configurable": {"thread_id": "m"}}).values["messages"] == before
    history = fresh.get_delta_channel_history(
        config={"configurable": {"thread_id": "m", "checkpoint_ns": ""}}, channels=["messages"]
    )
    assert history["messages"]["seed"]  # the parent chain is readable again
    _turns(graph, "m", 1)
    assert len(graph.get_state({"configurable": {"thread_id": "m"}}).values["messages"]) == 8


async def test_a_send_stuck_past_socket_timeout_raises_and_the_client_recovers(
    private_redis: Any,
) -> None:
    """``from_url``'s async client bounds each send by ``socket_timeout`` (with
    ``asyncio.timeout``, not a task per command): while the server stops reading, a large
    write gives up with redis' TimeoutError (before the server wakes); the next command,
    once the server reads again, works on a new connection."""
    from streamagent.memory.aio import TimedSendConnection, async_redis_client

    client = async_redis_client(private_redis.url, socket_timeout=0.3)
    assert client.connection_pool.connection_class is TimedSendConnection
    admin = private_redis.client()
    probe = redis.Redis(port=private_redis.port, socket_timeout=0.1, retry=Retry(NoBackoff(), 0))
    try:
        assert await client.ping()
        sleeper = threading.Thread(target=lambda: admin.execute_command("DEBUG", "SLEEP", 4))
        sleeper.start()
        while True:  # until the server is asleep: it reads nothing
            try:
                probe.ping()
            except redis.TimeoutError:
                break
            time.sleep(0.02)
        with pytest.raises(redis.TimeoutError):  # after the client's own retries
            await client.set("big", b"x" * (64 << 20))
        assert sleeper.is_alive()  # it gave up by itself, the server is still asleep
        sleeper.join()
        assert await client.set("small", b"y") and await client.get("small") == b"y"
    finally:
        await client.aclose()
        admin.close()
        probe.close()


async def test_async_script_calls_retry_on_a_dropped_connection(private_redis: Any) -> None:
    """Script calls (the async saver's hot path) keep the client's retry policy: a
    connection the server dropped is replaced and the call succeeds, with no error seen."""
    admin = private_redis.client()
    async with AsyncRedisSaver.from_url(private_redis.url, key_prefix="retry") as saver:
        await saver.asetup()
        graph = _chat_graph(saver)
        config = {"configurable": {"thread_id": "t"}}
        await graph.ainvoke({"messages": [HumanMessage("before")]}, config)
        for _ in range(2):
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            state = await graph.aget_state(config)
            assert [m.content for m in state.values["messages"]][0] == "before"
        await graph.ainvoke({"messages": [HumanMessage("after")]}, config)
        state = await graph.aget_state(config)
        assert len(state.values["messages"]) == 4
    admin.close()
