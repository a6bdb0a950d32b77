"""Both savers make the same round trips for the same operation (a real Redis of the test's
own, every write to its socket counted and decoded by a connection class of the test).

``RedisSaver`` (blocking) and ``AsyncRedisSaver`` (``redis.asyncio``) run one operation
logic (``streamagent/memory/_protocol.py``); this pins that they also *send* the same
thing: per operation, the same number of round trips, each with the same commands, in the
same order, including the fallbacks (a delta base gone: the put is sent again in full; a
server that lost its scripts: ``SCRIPT LOAD`` then the call again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, HumanMessage

from streamagent.memory import AsyncRedisSaver, RedisSaver
from streamagent.memory.turns import begin_turn
from tests._support.checkpoints import checkpoint
from tests.redis_fixtures import *  # noqa: F403

Trip = tuple[str, ...]


def command_names(packed: Any) -> Trip:
    """The command names in one socket write (RESP arrays of bulk strings)."""
    chunks = packed if isinstance(packed, list | tuple) else [packed]
    data = b"".join(c.encode() if isinstance(c, str) else bytes(c) for c in chunks)
    names, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 1] == b"*", data[pos : pos + 20]
        end = data.index(b"\r\n", pos)
        count, pos = int(data[pos + 1 : end]), end + 2
        for i in range(count):
            end = data.index(b"\r\n", pos)
            length, pos = int(data[pos + 1 : end]), end + 2
            if i == 0:
                names.append(data[pos : pos + length].decode().upper())
            pos += length + 2
    return tuple(names)


class Trips:
    """The round trips of one client: one entry per socket write (a request)."""

    def __init__(self) -> None:
        self.log: list[Trip] = []

    def since(self, mark: int) -> list[Trip]:
        return self.log[mark:]


def sync_counting(trips: Trips) -> type[redis.Connection]:
    class Counting(redis.Connection):
        def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            trips.log.append(command_names(command))
            super().send_packed_command(command, check_health)

    return Counting


def async_counting(trips: Trips) -> type[aioredis.Connection]:
    class Counting(aioredis.Connection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            trips.log.append(command_names(command))
            await super().send_packed_command(command, check_health)

    return Counting


def _history(n: int) -> list[Any]:
    return [
        (HumanMessage if i % 2 == 0 else AIMessage)(f"message {i}", id=f"m{i}") for i in range(n)
    ]


async def scenario(
    saver: Any, trips: Trips, run: Callable[[str, Any], Awaitable[Any]], raw: redis.Redis
) -> dict[str, list[Trip]]:
    """Every operation of the saver once (``run(name, *args)`` calls the sync method or
    awaits the async one), returning the round trips of each."""
    out: dict[str, list[Trip]] = {}

    async def measured(label: str, method: str, *args: Any, **kwargs: Any) -> Any:
        mark = len(trips.log)
        result = await run(method, *args, **kwargs)
        out[label] = trips.since(mark)
        return result

    await run("get_tuple", {"configurable": {"thread_id": "warm-up"}})  # connection made
    raw.script_flush()  # both savers start from a server without their scripts
    await measured("setup", "setup")
    cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    history = _history(4)
    first = checkpoint(1, history, saver, None)
    v1 = first["channel_versions"]["messages"]
    cfg = await measured("put (new thread)", "put", cfg, first, {"step": 1}, {"messages": v1})
    await measured("put_writes", "put_writes", cfg, [("messages", [AIMessage("w", id="w")])], "k")
    await measured("get_tuple (head)", "get_tuple", {"configurable": {"thread_id": "t"}})
    await measured("get_tuple (by id)", "get_tuple", cfg)
    history = [*history, AIMessage("five", id="m5")]
    second = checkpoint(2, history, saver, v1)
    v2 = second["channel_versions"]["messages"]
    cfg = await measured("put (append)", "put", cfg, second, {"step": 2}, {"messages": v2})
    # another worker deletes that checkpoint: the delta base / witness of the next put is
    # gone with it (this saver does not know), so the put is sent again in full
    other = RedisSaver(raw, key_prefix=saver.key_prefix)
    other.delete_checkpoints("t", [f"\x00{second['id']}"])
    assert not raw.hexists(saver.keys_for("t").blobs, f"\x00messages\x00{v2}")
    third = checkpoint(3, [*history, HumanMessage("six", id="m6")], saver, v2)
    v3 = third["channel_versions"]["messages"]
    cfg = await measured("put (base gone)", "put", cfg, third, {"step": 3}, {"messages": v3})
    raw.script_flush()  # a server that lost its scripts (restart, failover)
    await measured("get_tuple (no script)", "get_tuple", cfg)
    await measured("list (thread)", "list", {"configurable": {"thread_id": "t"}})
    await measured("list (all)", "list", None)
    await measured(
        "delta history",
        "get_delta_channel_history",
        config=cfg,
        channels=["messages"],
    )
    await measured("copy_thread", "copy_thread", "t", "t-copy")
    await measured("prune (keep_latest)", "prune", ["t-copy"])
    await measured("delete_for_runs", "delete_for_runs", ["no-such-run"])
    field = f"\x00{first['id']}"
    await measured("delete_checkpoints", "delete_checkpoints", "t", [field])
    await measured("turn_lock_probe", "turn_lock_probe", "t")
    await measured("prune (delete)", "prune", ["t-copy"], strategy="delete")
    await measured("delete_thread", "delete_thread", "t")
    await measured("get_tuple (deleted)", "get_tuple", {"configurable": {"thread_id": "t"}})
    return out


def _list(saver: Any, method: str) -> Callable[..., Any]:
    call = getattr(saver, method)
    return (lambda *a, **k: list(call(*a, **k))) if method == "list" else call


async def test_sync_and_async_savers_make_the_same_round_trips(private_redis: Any) -> None:
    raw = private_redis.client()
    sync_trips, async_trips = Trips(), Trips()
    sync_pool = redis.ConnectionPool.from_url(
        private_redis.url, connection_class=sync_counting(sync_trips)
    )
    async_pool = aioredis.ConnectionPool.from_url(
        private_redis.url, connection_class=async_counting(async_trips)
    )
    sync_saver = RedisSaver(redis.Redis(connection_pool=sync_pool), key_prefix="rt-sync")
    async_saver = AsyncRedisSaver(aioredis.Redis(connection_pool=async_pool), key_prefix="rt-async")

    async def run_sync(method: str, *args: Any, **kwargs: Any) -> Any:
        return _list(sync_saver, method)(*args, **kwargs)

    async def run_async(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "list":
            return [item async for item in async_saver.alist(*args, **kwargs)]
        return await getattr(async_saver, f"a{method}")(*args, **kwargs)

    try:
        sync_ops = await scenario(sync_saver, sync_trips, run_sync, raw)
        async_ops = await scenario(async_saver, async_trips, run_async, raw)
    finally:
        await async_saver.client.aclose()
        sync_saver.client.close()
        raw.close()
    assert sync_ops.keys() == async_ops.keys()
    for label, trips in sync_ops.items():
        assert trips == async_ops[label], label
    one_script = [("EVALSHA",)]
    for label in ("put (new thread)", "put (append)", "put_writes", "get_tuple (head)"):
        assert sync_ops[label] == one_script, label
    assert sync_ops["put (base gone)"] == one_script * 2
    assert sync_ops["get_tuple (no script)"] == [("EVALSHA",), ("SCRIPT",), ("EVALSHA",)]
    assert sync_ops["list (thread)"] == [("ZRANGE", "ZRANGE"), ("EVALSHA",)]
    assert sync_ops["list (all)"][0] == ("SCAN",)
    # the lock's two scripts were flushed with the others: each is loaded on first use
    reload = [("EVALSHA",), ("SCRIPT",), ("EVALSHA",)]
    assert sync_ops["turn_lock_probe"] == reload * 2
    assert ("INFO",) in sync_ops["setup"] and ("DEL", "DEL") in sync_ops["setup"]


async def test_a_turn_takes_the_same_round_trips_on_both_savers(private_redis: Any) -> None:
    """``begin_turn`` + release: one script each, whichever saver holds the thread."""
    counted: dict[str, list[Trip]] = {}
    for kind in ("sync", "async"):
        trips = Trips()
        if kind == "sync":
            pool: Any = redis.ConnectionPool.from_url(
                private_redis.url, connection_class=sync_counting(trips)
            )
            saver: Any = RedisSaver(redis.Redis(connection_pool=pool), key_prefix="rt-turn-s")
        else:
            pool = aioredis.ConnectionPool.from_url(
                private_redis.url, connection_class=async_counting(trips)
            )
            saver = AsyncRedisSaver(aioredis.Redis(connection_pool=pool), key_prefix="rt-turn-a")
        await saver.asetup()  # the connection made, every script loaded
        mark = len(trips.log)
        turn = await begin_turn(saver, {"configurable": {"thread_id": "t"}})
        assert turn is not None
        await turn.release()
        counted[kind] = trips.since(mark)
        if kind == "async":
            await saver.client.aclose()
        else:
            saver.client.close()
    assert counted["sync"] == counted["async"] == [("EVALSHA",), ("EVALSHA",)]


@pytest.mark.parametrize(
    ("packed", "names"),
    [
        ([b"*1\r\n$4\r\nPING\r\n"], ("PING",)),
        # a bulk string holding CRLF is read by its length; chunks are joined
        ([b"*2\r\n$3\r\nget\r\n$3\r\na\r\n\r\n", b"*1\r\n$4\r\nPING\r\n"], ("GET", "PING")),
        (b"*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nj\r\n", ("DEL", "DEL")),
    ],
)
def test_the_trip_decoder_reads_resp_commands(packed: Any, names: Trip) -> None:
    assert command_names(packed) == names


async def test_the_async_client_still_health_checks_an_idle_connection(private_redis: Any) -> None:
    """``from_url``'s connection writes small commands without a timeout context, but a
    connection idle past ``health_check_interval`` is still PINGed before the next command."""
    from streamagent.memory.aio import TimedSendConnection, async_redis_client

    trips = Trips()

    class Counting(TimedSendConnection):
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            connected = self.is_connected
            await super().send_packed_command(command, check_health)
            if connected:  # logged once written: a health check's PING goes out first
                trips.log.append(command_names(command))

    client = async_redis_client(private_redis.url, health_check_interval=0.05)
    client.connection_pool.connection_class = Counting
    saver = AsyncRedisSaver(client, key_prefix="rt-health")
    try:
        await saver.asetup()
        mark = len(trips.log)
        await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert trips.since(mark) == [("EVALSHA",)]  # fresh: no check due
        await asyncio.sleep(0.1)
        mark = len(trips.log)
        await saver.aget_tuple({"configurable": {"thread_id": "t"}})
        assert trips.since(mark) == [("PING",), ("EVALSHA",)]
    finally:
        await client.aclose()
