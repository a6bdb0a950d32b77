"""Memory integrity (issue #14): tampered data, clock skew, lost keys, expired threads,
connection limits, setup checks. Each fault is driven as a deployment would meet it, and each
test asserts that no acknowledged user message goes missing from the thread afterwards."""

from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

import ormsgpack
import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from streamagent.errors import (
    CheckpointCorruptedError,
    ConfigurationError,
    MemoryUnavailable,
    ThreadBusyError,
    ThreadExpiredError,
    TurnFencedError,
)
from streamagent.memory import RedisSaver, UnsafeDeserializationError
from streamagent.memory._setup import EvictionRiskWarning
from tests.integration_tests.memory_worker import skew_checkpoint_clock
from tests.redis_fixtures import *  # noqa: F403
from tests.redis_fixtures import PrivateRedis


class NoteState(TypedDict):
    note: str


def chat_graph(saver: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node(
        "model", lambda s: {"messages": [AIMessage(f"reply to {s['messages'][-1].content}")]}
    )
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def user_texts(graph: Any, thread: str) -> list[str]:
    state = graph.get_state({"configurable": {"thread_id": thread}})
    return [m.content for m in state.values.get("messages", []) if isinstance(m, HumanMessage)]


TAMPERED_BLOBS = {
    "pickle": b"pickle\x00" + pickle.dumps({"x": 1}),
    "lc1": b"json\x00"
    + json.dumps({"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}).encode(),
    "lc2": b"json\x00"
    + json.dumps({"lc": 2, "type": "constructor", "id": ["x", "Y"], "kwargs": {}}).encode(),
    "lc2-msgpack": b"msgpack\x00"
    + ormsgpack.packb({"lc": 2, "type": "constructor", "id": ["x", "Y"]}),
    "unknown-ext": b"msgpack\x00" + ormsgpack.packb(ormsgpack.Ext(77, b"")),
}


@pytest.mark.parametrize("kind", list(TAMPERED_BLOBS))
def test_tampered_checkpoint_values_are_refused_with_a_typed_error(
    make_saver: Any, sync_client: redis.Redis, kind: str
) -> None:
    saver: RedisSaver = make_saver("sync")
    builder = StateGraph(NoteState)
    builder.add_node("n", lambda s: {"note": "stored"})
    builder.add_edge(START, "n")
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"note": "first"}, {"configurable": {"thread_id": "t"}})
    blobs = saver.keys_for("t").blobs
    fields = [f for f in sync_client.hkeys(blobs) if f.split(b"\x00")[1] == b"note"]
    assert fields
    for field in fields:
        sync_client.hset(blobs, field, TAMPERED_BLOBS[kind])
    with pytest.raises(UnsafeDeserializationError):
        saver.get_tuple({"configurable": {"thread_id": "t"}})
    with pytest.raises(UnsafeDeserializationError):
        graph.invoke({"note": "second"}, {"configurable": {"thread_id": "t"}})


# --------------------------------------------------------------------------- helpers
ROOT = Path(__file__).resolve().parents[2]


def worker(url: str, prefix: str, thread: str, *messages: str, **options: Any) -> list[dict]:
    """Run turns in a separate OS process (tests/integration_tests/memory_worker.py)."""
    proc = worker_start(url, prefix, thread, *messages, **options)
    return worker_wait(proc)


def worker_start(
    url: str, prefix: str, thread: str, *messages: str, **options: Any
) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.integration_tests.memory_worker", url, prefix, thread]
    args += list(messages)
    for name, value in options.items():
        flag = f"--{name.replace('_', '-')}"
        if value is True:
            args.append(flag)
        elif value is not None and value is not False:
            args += [flag, str(value)]
    return subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def worker_wait(proc: subprocess.Popen[str], timeout: float = 60) -> list[dict]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def acknowledged(results: list[dict]) -> list[str]:
    return [r["message"] for r in results if r["ok"]]


# --------------------------------------------------------------------------- clock skew
def test_a_worker_with_a_clock_an_hour_ahead_hides_no_turn(
    redis_url: str, key_prefix: str, make_saver: Any
) -> None:
    """Issue row: worker A's clock 1 h ahead of worker B; every turn of both stays."""
    runs: list[dict] = []
    runs += worker(redis_url, key_prefix, "t", "a1", skew=3600)
    runs += worker(redis_url, key_prefix, "t", "b1", "b2")
    runs += worker(redis_url, key_prefix, "t", "a2", skew=3600)
    runs += worker(redis_url, key_prefix, "t", "b3", skew=-7200)
    assert all(r["ok"] for r in runs), runs
    # every turn saw the whole conversation before it (2 messages per earlier turn)
    assert [r["seen"] for r in runs] == [1, 3, 5, 7, 9]
    saver = make_saver("sync")
    graph = chat_graph(saver)
    assert user_texts(graph, "t") == acknowledged(runs) == ["a1", "b1", "b2", "a2", "b3"]
    # listing order stays LangGraph's: newest id first, whatever the write order
    ids = [
        t.config["configurable"]["checkpoint_id"]
        for t in saver.list({"configurable": {"thread_id": "t"}})
    ]
    assert ids == sorted(ids, reverse=True)
    head = saver.get_tuple({"configurable": {"thread_id": "t"}})
    assert head is not None and head.checkpoint["id"] != ids[0]  # "latest" is not the max id
    assert head.checkpoint["channel_values"]["messages"][-2].content == "b3"


def test_keep_last_keeps_the_head_whatever_the_clock(
    redis_url: str, key_prefix: str, make_saver: Any
) -> None:
    saver = make_saver("sync", keep_last=1)
    graph = chat_graph(saver)
    skew_checkpoint_clock(3600)
    try:
        graph.invoke({"messages": [HumanMessage("ahead")]}, {"configurable": {"thread_id": "k"}})
    finally:
        skew_checkpoint_clock(0)
    graph.invoke({"messages": [HumanMessage("now")]}, {"configurable": {"thread_id": "k"}})
    assert user_texts(graph, "k") == ["ahead", "now"]
    assert len(list(saver.list({"configurable": {"thread_id": "k"}}))) == 1


# --------------------------------------------------------------------------- lost pieces
def _two_turns(saver: Any, thread: str = "t") -> Any:
    graph = chat_graph(saver)
    for text in ("first", "second"):
        graph.invoke({"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}})
    return graph


@pytest.mark.parametrize("kind", ["cp", "refs", "idx", "blobs", "msgs", "w", "wi", "ns", "head"])
def test_a_lost_key_is_a_typed_error_naming_the_thread_and_piece(
    make_saver: Any, sync_client: redis.Redis, kind: str
) -> None:
    saver: RedisSaver = make_saver("sync")
    graph = _two_turns(saver)
    key = getattr(saver.keys_for("t"), kind)
    assert sync_client.delete(key) == 1
    config = {"configurable": {"thread_id": "t"}}
    with pytest.raises(CheckpointCorruptedError) as info:
        saver.get_tuple(config)
    assert info.value.thread_id == "t" and kind in info.value.piece
    assert info.value.to_dict()["piece"] == info.value.piece
    # a new turn is refused before anything is stored: the damage stays visible
    with pytest.raises(CheckpointCorruptedError):
        graph.invoke({"messages": [HumanMessage("third")]}, config)
    assert not sync_client.exists(key)
    # deleting the thread acknowledges the loss: the id starts over
    saver.delete_thread("t")
    graph.invoke({"messages": [HumanMessage("again")]}, config)
    assert user_texts(graph, "t") == ["again"]


def test_a_lost_message_blob_or_write_field_is_a_typed_error(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    saver: RedisSaver = make_saver("sync", message_cache_bytes=0)
    _two_turns(saver)
    keys = saver.keys_for("t")
    config = {"configurable": {"thread_id": "t"}}
    stored = sync_client.hgetall(keys.msgs)
    sync_client.hdel(keys.msgs, *stored)  # every message field lost, the key itself kept
    sync_client.hset(keys.msgs, "0" * 24, b"unused")
    with pytest.raises(CheckpointCorruptedError, match="message"):
        saver.get_tuple(config)
    sync_client.hset(keys.msgs, mapping=stored)
    assert saver.get_tuple(config) is not None
    head = saver.get_tuple(config)
    assert head is not None
    blob_fields = [f for f in sync_client.hkeys(keys.blobs) if b"messages" in f]
    for field in blob_fields:
        sync_client.hdel(keys.blobs, field)
    with pytest.raises(CheckpointCorruptedError, match="blob messages"):
        saver.get_tuple(config)


def test_eviction_under_allkeys_lru_never_loads_a_shorter_thread(
    private_redis: PrivateRedis, key_prefix: str
) -> None:
    """Issue row: maxmemory + allkeys-lru, then real eviction driven by another process."""
    admin = private_redis.client()
    admin.config_set("maxmemory", 6 * 1024 * 1024)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    client = private_redis.client()
    saver = RedisSaver(client, key_prefix=key_prefix)
    with pytest.warns(EvictionRiskWarning, match="allkeys-lru"):
        saver.setup()
    with pytest.raises(ConfigurationError, match="maxmemory-policy=allkeys-lru"):
        saver.setup(eviction="refuse")
    graph = chat_graph(saver)
    threads = [f"e{i}" for i in range(20)]
    acked: dict[str, list[str]] = {t: [] for t in threads}
    for turn in range(3):
        for thread in threads:
            text = f"{thread} turn {turn} " + "x" * 3000
            graph.invoke(
                {"messages": [HumanMessage(text)]}, {"configurable": {"thread_id": thread}}
            )
            acked[thread].append(text)
    # another process fills memory until Redis has evicted keys of the threads
    filler = subprocess.run(
        [sys.executable, "-c", FILL_MEMORY, str(private_redis.port), key_prefix],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert filler.returncode == 0, filler.stderr
    assert int(admin.info("stats")["evicted_keys"]) > 0
    outcomes = {"intact": 0, "corrupted": 0, "expired": 0, "absent": 0}
    for thread in threads:  # this process wrote every thread: it knows they existed
        try:
            users = user_texts(graph, thread)
        except CheckpointCorruptedError as exc:
            assert exc.thread_id == thread
            outcomes["corrupted"] += 1
            continue
        except ThreadExpiredError as exc:
            assert exc.reason == "lost"
            outcomes["expired"] += 1
            continue
        assert users == acked[thread], f"{thread} loaded {len(users)} of {len(acked[thread])}"
        outcomes["intact"] += 1
    assert outcomes["corrupted"] + outcomes["expired"] > 0, outcomes
    # a fresh process never loads a shorter thread either (a thread that lost every key,
    # tombstone included, reads as new there: the documented limit)
    reader = worker(private_redis.url, key_prefix, ",".join(threads), "-", read=True)
    for row in reader:
        if row["users"] is not None and row["users"]:
            assert row["users"] == acked[row["thread"]]
        else:
            assert row["error"] in ("CheckpointCorruptedError", "ThreadExpiredError", None)


FILL_MEMORY = """
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
prefix = sys.argv[2]
def damaged():
    keys = [k for k in r.scan_iter(match="{" + prefix + ":*", count=1000)]
    return len(keys)
start = damaged()
for i in range(4000):
    try:
        r.set(f"junk:{i}", b"j" * 8192)
    except redis.RedisError:
        pass
    if i % 100 == 99 and damaged() < start - 40:
        break
"""


# --------------------------------------------------------------------------- gone threads
def test_a_thread_expired_by_ttl_is_a_notice_in_another_process(
    redis_url: str, key_prefix: str
) -> None:
    """Issue row: a thread expired by TTL; the next turn (another process) is refused with
    ThreadExpiredError instead of silently starting from the new message."""
    first = worker(redis_url, key_prefix, "x", "hello", ttl=1)
    assert acknowledged(first) == ["hello"]
    time.sleep(2.2)
    later = worker(redis_url, key_prefix, "x", "remember me?", ttl=1)
    assert later[0]["error"] == "ThreadExpiredError" and not later[0]["ok"]


def test_a_thread_without_ttl_that_lost_every_data_key_is_lost_for_any_process(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    """Every data key gone (evicted, deleted by hand) but the live tombstone kept: without a
    TTL the data cannot have expired, so even a process that never saw the thread reports
    it lost; with a TTL it reads as expired (the two cannot be told apart)."""
    for ttl, reason in ((None, "lost"), (3600, "expired")):
        thread = f"gone-{reason}"
        _two_turns(make_saver("sync", ttl_seconds=ttl), thread)
        keys = make_saver("sync").keys_for(thread)
        assert sync_client.delete(*keys.data) >= 6
        assert sync_client.hget(keys.seen, "s") == b"1"
        stranger = make_saver("sync", ttl_seconds=ttl)  # a process that never saw it
        with pytest.raises(ThreadExpiredError) as info:
            stranger.get_tuple({"configurable": {"thread_id": thread}})
        assert info.value.reason == reason
        with pytest.raises(ThreadExpiredError):
            stranger.get_delta_channel_history(
                config={"configurable": {"thread_id": thread}}, channels=["messages"]
            )
        stranger.delete_thread(thread)  # acknowledged: the id starts over
        assert stranger.get_tuple({"configurable": {"thread_id": thread}}) is None


def test_redis_restarted_empty_is_a_notice_for_processes_that_saw_the_thread(
    private_redis: PrivateRedis, key_prefix: str, tmp_path: Path
) -> None:
    """Issue row: Redis restarted empty. The worker that served the thread says so."""
    gate = tmp_path / "gate"
    proc = worker_start(private_redis.url, key_prefix, "r", "before", "after", gate=gate)
    client = private_redis.client()
    deadline = time.monotonic() + 60
    while not client.exists(f"{{{key_prefix}:r}}:head"):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.3)
    private_redis.restart_empty()
    gate.touch()
    results = worker_wait(proc)
    assert results[0]["ok"] and results[1]["error"] == "ThreadExpiredError", results
    # this process also saw it (read), then a FLUSHALL
    saver = RedisSaver(private_redis.client(), key_prefix=key_prefix)
    saver.setup()
    graph = chat_graph(saver)
    graph.invoke({"messages": [HumanMessage("one")]}, {"configurable": {"thread_id": "f"}})
    private_redis.client().flushall()
    with pytest.raises(ThreadExpiredError) as info:
        graph.invoke({"messages": [HumanMessage("two")]}, {"configurable": {"thread_id": "f"}})
    assert info.value.reason == "lost"
    saver.delete_thread("f")  # acknowledged: the id starts over
    graph.invoke({"messages": [HumanMessage("three")]}, {"configurable": {"thread_id": "f"}})


# --------------------------------------------------------------------------- setup checks
def test_setup_names_a_missing_acl_permission(private_redis: PrivateRedis) -> None:
    """Issue row: an ACL user without the needed commands; setup() fails, naming it."""
    admin = private_redis.client()
    prefix = "acl"
    rule = ["on", ">pw", f"~{{{prefix}:*", f"~{prefix}:schema", "+@connection",
            "+@read", "+@write", "+@hash", "+@sortedset", "+@string", "+@keyspace",
            "+@scripting", "+time", "+info", "+dump", "+restore"]  # fmt: skip
    admin.execute_command("ACL", "SETUSER", "full", "reset", *rule)
    admin.execute_command("ACL", "SETUSER", "nodump", "reset", *rule, "-dump")
    admin.execute_command("ACL", "SETUSER", "noscript", "reset", *rule, "-@scripting")
    for user in ("full", "nodump", "noscript"):
        client = redis.Redis(port=private_redis.port, username=user, password="pw")
        saver = RedisSaver(client, key_prefix=prefix)
        if user == "full":
            saver.setup()  # the documented rule is enough
            _two_turns(saver)
            continue
        with pytest.raises(ConfigurationError, match="NOPERM.*ACL SETUSER") as info:
            saver.setup()
        # Redis 7 names the command; inside a script Redis 6.2 only says it was refused,
        # so the error names the saver operation that needs it
        assert ("copy_thread" if user == "nodump" else "evalsha") in str(info.value).lower()
    # the probe leaves nothing behind
    assert [k for k in admin.scan_iter(match="*probe*")] == []


def test_tls_url_to_a_plain_port_says_tls_at_once(private_redis: PrivateRedis) -> None:
    """Issue row: rediss:// to a plain port: a ConfigurationError that says "TLS?" (the
    handshake's failure is recognised), not a connection timeout after 6-10 s."""
    url = f"rediss://127.0.0.1:{private_redis.port}/0"
    with RedisSaver.from_url(url) as saver, pytest.raises(ConfigurationError, match="TLS\\?"):
        saver.setup()
    with (
        RedisSaver.from_url(
            url, connection_options={"socket_connect_timeout": 0.3, "socket_timeout": 0.3}
        ) as saver,
        pytest.raises(MemoryUnavailable, match="TLS\\?"),
    ):
        saver.get_tuple({"configurable": {"thread_id": "t"}})


# --------------------------------------------------------------------------- connection pools
@pytest.mark.slow
def test_a_thousand_concurrent_conversations_queue_on_the_pool(
    redis_url: str, key_prefix: str, make_saver: Any
) -> None:
    """Issue row: AsyncRedisSaver.from_url with many concurrent conversations. Two processes
    run 500 conversations each at once, two turns each, on the default (bounded, blocking)
    pool: nothing fails, nothing is missing."""
    threads = {side: [f"{side}{i}" for i in range(500)] for side in ("p", "q")}
    procs = [
        worker_start(redis_url, key_prefix, ",".join(ts), "m1", "m2", concurrent=True)
        for ts in threads.values()
    ]
    results = [row for proc in procs for row in worker_wait(proc, timeout=110)]
    assert len(results) == 2000
    failed = [r for r in results if not r["ok"]]
    assert failed == [], failed[:3]
    saver = make_saver("sync")
    graph = chat_graph(saver)
    for thread in threads["p"][:50] + threads["q"][-50:]:
        assert user_texts(graph, thread) == ["m1", "m2"]


async def test_a_small_pool_queues_and_an_exhausted_one_says_so(
    redis_url: str, key_prefix: str
) -> None:
    from streamagent.memory import AsyncRedisSaver

    async with AsyncRedisSaver.from_url(
        redis_url, key_prefix=key_prefix, max_connections=2, pool_timeout=5
    ) as saver:
        await saver.asetup()
        graph = chat_graph_async(saver)
        await asyncio.gather(
            *(
                graph.ainvoke(
                    {"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": f"s{i}"}}
                )
                for i in range(200)
            )
        )
        pool = saver.client.connection_pool
        assert pool.max_connections == 2
    async with AsyncRedisSaver.from_url(
        redis_url, key_prefix=key_prefix, max_connections=1, pool_timeout=0.05
    ) as saver:
        conn = await saver.client.connection_pool.get_connection()  # hold the only one
        try:
            with pytest.raises(MemoryUnavailable, match="pool"):
                await saver.aget_tuple({"configurable": {"thread_id": "x"}})
        finally:
            await saver.client.connection_pool.release(conn)


def chat_graph_async(saver: Any) -> Any:
    from tests.integration_tests.memory_worker import chat_graph as worker_graph

    return worker_graph(saver)


# --------------------------------------------------------------------------- one turn at a time
def _race(
    redis_url: str, prefix: str, tmp_path: Path, thread: str, strategy: str, trials: int
) -> list[dict]:
    """Two OS processes start a turn on one thread within ~10 ms of each other, ``trials``
    times (each worker announces it is ready, then waits for its gate)."""
    gates = [tmp_path / f"{thread}-{side}" for side in "ab"]
    procs = [
        worker_start(
            redis_url, prefix, thread, *[f"{n} from {side}" for n in range(trials)],
            multitask=strategy, model_seconds=2.0, turn_gate=gate, wait=30,
        )
        for side, gate in zip("ab", gates, strict=True)
    ]  # fmt: skip
    deadline = time.monotonic() + 60 + 5 * trials
    for _ in range(trials):
        ready = [Path(f"{g}.ready") for g in gates]
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
            time.sleep(0.01)
        for r in ready:
            r.unlink()
        gates[0].touch()
        time.sleep(0.01)
        gates[1].touch()
    return [row for proc in procs for row in worker_wait(proc)]


@pytest.mark.slow
def test_two_processes_double_submit_reject_keeps_one_turn_and_says_busy(
    redis_url: str, key_prefix: str, tmp_path: Path, make_saver: Any
) -> None:
    """Issue row: two turns on one thread 10 ms apart (double submit), 5 trials: each time
    one runs, the other is refused with ThreadBusyError; the thread holds exactly the
    acknowledged turns, in order, with no fork."""
    results = _race(redis_url, key_prefix, tmp_path, "d", "reject", trials=5)
    ok = [r for r in results if r["ok"]]
    busy = [r for r in results if r["error"] == "ThreadBusyError"]
    assert len(ok) == 5 and len(busy) == 5, results
    assert {r["message"].split()[0] for r in ok} == {"0", "1", "2", "3", "4"}
    graph = chat_graph(make_saver("sync"))
    users = user_texts(graph, "d")
    assert sorted(users) == sorted(acknowledged(results))
    assert [u.split()[0] for u in users] == ["0", "1", "2", "3", "4"]
    messages = graph.get_state({"configurable": {"thread_id": "d"}}).values["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage"] * 5


@pytest.mark.slow
def test_two_processes_enqueue_runs_both_turns_one_after_the_other(
    redis_url: str, key_prefix: str, tmp_path: Path, make_saver: Any
) -> None:
    results = _race(redis_url, key_prefix, tmp_path, "q", "enqueue", trials=2)
    assert all(r["ok"] for r in results), results
    graph = chat_graph(make_saver("sync"))
    assert sorted(user_texts(graph, "q")) == sorted(acknowledged(results))
    messages = graph.get_state({"configurable": {"thread_id": "q"}}).values["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage"] * 4
    assert messages[-1].content.endswith("after 7")  # each turn saw the ones before it


async def test_a_late_writer_of_an_expired_turn_is_fenced_out(
    redis_url: str, key_prefix: str
) -> None:
    from streamagent.memory import AsyncRedisSaver
    from streamagent.memory.turns import begin_turn

    async with AsyncRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
        await saver.asetup()
        graph = chat_graph_async(saver)
        config = {"configurable": {"thread_id": "f"}}
        old = await begin_turn(saver, config, lease_seconds=0.3)
        assert old is not None
        old._heartbeat.cancel()  # the holder stalls: no renewal, its lease runs out
        with pytest.raises(ThreadBusyError):
            await begin_turn(saver, config)
        await asyncio.sleep(0.45)
        new = await begin_turn(saver, config)  # the thread is free again
        assert new is not None and int(new.token) > int(old.token)
        await graph.ainvoke({"messages": [HumanMessage("new turn")]}, new.config(config))
        with pytest.raises(TurnFencedError):  # the stalled holder wakes up and writes
            await graph.ainvoke({"messages": [HumanMessage("late")]}, old.config(config))
        await new.release()
        state = await graph.aget_state(config)
        assert [m.content for m in state.values["messages"] if isinstance(m, HumanMessage)] == [
            "new turn"
        ]
        await old.release()  # a stale release leaves the new holder's lock alone
        again = await begin_turn(saver, config)
        assert again is not None
        third = begin_turn(saver, config)
        with pytest.raises(ThreadBusyError) as info:
            await third
        assert info.value.retryable and info.value.to_dict()["thread_id"] == "f"
        await again.release()


async def test_astream_chunks_rejects_a_busy_thread_with_a_typed_chunk(
    redis_url: str, key_prefix: str
) -> None:
    from streamagent.memory import AsyncRedisSaver
    from streamagent.streaming import astream_chunks
    from tests.integration_tests.memory_worker import chat_graph as slow_graph

    async with AsyncRedisSaver.from_url(redis_url, key_prefix=key_prefix) as saver:
        await saver.asetup()
        graph = slow_graph(saver, model_seconds=0.5)

        async def turn(text: str, **options: Any) -> list[Any]:
            return [c async for c in astream_chunks(graph, text, thread_id="s", **options)]

        first, second = await asyncio.gather(turn("one"), turn("two"))
        kinds = sorted([first[-1].type, second[-1].type])
        assert kinds == ["done", "error"]
        error = (first if first[-1].type == "error" else second)[-1].error
        assert error["type"] == "ThreadBusyError" and error["retryable"] is True
        first, second = await asyncio.gather(
            turn("three", multitask="enqueue"), turn("four", multitask="enqueue", wait_seconds=5)
        )
        assert first[-1].type == second[-1].type == "done"
        state = await graph.aget_state({"configurable": {"thread_id": "s"}})
        users = [m.content for m in state.values["messages"] if isinstance(m, HumanMessage)]
        assert len(users) == 3 and set(users[1:]) == {"three", "four"}
        bad = await turn("x", multitask="interrupt")
        assert bad[-1].error["type"] == "ConfigurationError"


# --------------------------------------------------------------------------- rows across processes
def test_a_worker_without_permissions_fails_at_setup_and_loses_nothing(
    private_redis: PrivateRedis,
) -> None:
    """Issue row (ACL) across processes: a worker whose Redis user lacks DUMP stops at
    setup(), before any turn; a worker with the documented rule serves the thread."""
    admin = private_redis.client()
    prefix = "aclw"
    rule = ["on", ">pw", f"~{{{prefix}:*", f"~{prefix}:schema", "+@connection",
            "+@read", "+@write", "+@hash", "+@sortedset", "+@string", "+@keyspace",
            "+@scripting", "+time", "+info", "+dump", "+restore"]  # fmt: skip
    admin.execute_command("ACL", "SETUSER", "app", "reset", *rule)
    admin.execute_command("ACL", "SETUSER", "weak", "reset", *rule, "-dump")
    url = f"redis://{{user}}:pw@127.0.0.1:{private_redis.port}/0"
    good = worker(url.format(user="app"), prefix, "t", "one", "two")
    assert acknowledged(good) == ["one", "two"]
    weak = worker_start(url.format(user="weak"), prefix, "t", "three")
    out, err = weak.communicate(timeout=60)
    assert weak.returncode != 0 and "NOPERM" in err and out.strip() == ""
    reader = worker(url.format(user="app"), prefix, "t", "-", read=True)
    assert reader[0]["users"] == ["one", "two"]


def test_a_tampered_thread_refuses_the_next_turn_in_another_process(
    redis_url: str, key_prefix: str, sync_client: redis.Redis, make_saver: Any
) -> None:
    """Issue row (tampered checkpoint) across processes: after an lc:2 envelope is planted,
    the next turn (another process) fails typed and the stored turns are not overwritten."""
    first = worker(redis_url, key_prefix, "x", "one")
    assert acknowledged(first) == ["one"]
    saver = make_saver("sync")
    msgs = saver.keys_for("x").msgs
    fields = sync_client.hkeys(msgs)
    planted = b"msgpack\x00" + ormsgpack.packb({"lc": 2, "type": "constructor", "id": ["x", "Y"]})
    original = {f: sync_client.hget(msgs, f) for f in fields}
    for field in fields:
        sync_client.hset(msgs, field, planted)
    later = worker(redis_url, key_prefix, "x", "two")
    assert later[0]["error"] == "UnsafeDeserializationError" and not later[0]["ok"]
    sync_client.hset(msgs, mapping=original)  # the operator restores the data: nothing was lost
    assert user_texts(chat_graph(saver), "x") == ["one"]
