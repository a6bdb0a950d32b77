"""Checkpointer benchmark: streamagent's Redis saver against LangGraph's and others' savers.

Run by hand (prints markdown tables)::

    .venv/bin/python benchmarks/checkpointers.py [--runs 3] [--iterations 150]

Savers: InMemorySaver, AsyncSqliteSaver (a temp file), AsyncPostgresSaver (``--pg-url``, default
the local PostgreSQL, database ``test``), langgraph-checkpoint-plainredis and streamagent (the
async saver, and the sync ``RedisSaver`` called through its sync methods), the Redis savers on
the same Redis (``REDIS_URL``, default 127.0.0.1:6379/0, else embedded). All measured in one
process, interleaved call by call; each figure is the median over runs.

Sections (``--sections``): ``ops`` (put / get_tuple / put_writes at 20 and 100 messages, with
ratios to plainredis), ``turns`` (a 20-turn conversation), ``lock`` (the per-turn cost of the
turn lock and head pointer), ``delta`` (a 400-message thread with the messages channel and with
LangGraph's ``DeltaChannel``: memory, write and read latency), ``storage`` (memory per thread),
``server`` (not in the default set: Redis's own time in the streamagent scripts per operation,
from ``INFO commandstats``; run it against a Redis of its own). The figures of a run are in
docs/memory.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, TypedDict

import redis
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.message import add_messages

from streamagent.memory import AsyncRedisSaver, RedisSaver, default_redis_url

WORDS = "the agent streams tokens while the saver keeps every turn of the thread safe".split()


def text(seed: int, tokens: int = 200) -> str:
    return " ".join(WORDS[(seed + i) % len(WORDS)] for i in range(tokens))


def message(i: int) -> BaseMessage:
    cls = HumanMessage if i % 2 == 0 else AIMessage
    return cls(text(i), id=f"m{i}-{uuid.uuid4().hex[:6]}")


def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except redis.ConnectionError:
        return default_redis_url()
    return url


@asynccontextmanager
async def savers(
    url: str, pg_url: str, wanted: set[str] | None = None
) -> AsyncIterator[dict[str, BaseCheckpointSaver[Any]]]:
    out: dict[str, BaseCheckpointSaver[Any]] = {"InMemorySaver": InMemorySaver()}
    async with AsyncExitStack() as stack:
        try:
            from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

            path = tempfile.mktemp(suffix=".sqlite")
            out["AsyncSqliteSaver"] = await stack.enter_async_context(
                AsyncSqliteSaver.from_conn_string(path)
            )
        except ImportError as exc:
            print(f"(sqlite saver unavailable: {exc})")
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

            pg = await stack.enter_async_context(AsyncPostgresSaver.from_conn_string(pg_url))
            await pg.setup()
            out["AsyncPostgresSaver"] = pg
        except Exception as exc:
            print(f"(postgres saver unavailable: {type(exc).__name__}: {exc})")
        from langgraph_checkpoint_plainredis import AsyncRedisSaver as PlainRedis

        out["plainredis"] = PlainRedis(url=url, prefix=f"bench-plain-{uuid.uuid4().hex[:6]}")
        mine = await stack.enter_async_context(
            AsyncRedisSaver.from_url(url, key_prefix=f"bench-sa-{uuid.uuid4().hex[:6]}")
        )
        await mine.asetup()
        out["streamagent"] = mine
        sync_saver = stack.enter_context(
            RedisSaver.from_url(url, key_prefix=f"bench-sas-{uuid.uuid4().hex[:6]}")
        )
        sync_saver.setup()
        out["streamagent (sync)"] = sync_saver
        yield {name: saver for name, saver in out.items() if wanted is None or name in wanted}


async def call(saver: Any, method: str, *args: Any) -> Any:
    """``saver.a<method>(...)``, or the sync method itself for the sync Redis saver."""
    if isinstance(saver, RedisSaver):
        return getattr(saver, method)(*args)
    return await getattr(saver, f"a{method}")(*args)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_ops(
    all_savers: dict[str, Any], size: int, iterations: int
) -> dict[str, dict[str, list[float]]]:
    """put / get_tuple / put_writes latencies with a messages channel of ``size`` messages."""
    times: dict[str, dict[str, list[float]]] = {
        n: {"put": [], "get": [], "writes": []} for n in all_savers
    }
    threads = {n: f"ops-{uuid.uuid4().hex[:8]}" for n in all_savers}
    parents: dict[str, Any] = {n: None for n in all_savers}
    history = [message(i) for i in range(size)]
    for it in range(iterations):
        history = [*history[1:], message(size + it)]  # sliding window: always ``size`` messages
        ck = empty_checkpoint()
        ck["id"] = str(uuid6(clock_seq=it))
        ck["channel_values"] = {"messages": list(history), "branch:to:model": None}
        for name, saver in all_savers.items():
            version = saver.get_next_version(ck["channel_versions"].get("messages"), None)
            ck_n = {**ck, "channel_versions": {"messages": version, "branch:to:model": version}}
            config = {"configurable": {"thread_id": threads[name], "checkpoint_ns": ""}}
            if parents[name]:
                config["configurable"]["checkpoint_id"] = parents[name]
            t0 = time.perf_counter()
            saved = await call(
                saver,
                "put",
                config,
                ck_n,
                {"source": "loop", "step": it},
                dict(ck_n["channel_versions"]),
            )
            t1 = time.perf_counter()
            await call(
                saver,
                "put_writes",
                saved,
                [("messages", [history[-1]]), ("branch:to:model", None)],
                f"task-{it}",
            )
            t2 = time.perf_counter()
            got = await call(
                saver,
                "get_tuple",
                {"configurable": {"thread_id": threads[name], "checkpoint_ns": ""}},
            )
            t3 = time.perf_counter()
            assert got is not None
            assert len(got.checkpoint["channel_values"]["messages"]) == size
            parents[name] = saved["configurable"]["checkpoint_id"]
            times[name]["put"].append(t1 - t0)
            times[name]["writes"].append(t2 - t1)
            times[name]["get"].append(t3 - t2)
    for name, saver in all_savers.items():
        await call(saver, "delete_thread", threads[name])
    return times


def evalsha_usec(client: redis.Redis) -> int:
    """Microseconds Redis spent in ``EVALSHA`` so far (``INFO commandstats``)."""
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0))


async def bench_server(
    all_savers: dict[str, Any], url: str, size: int, iterations: int
) -> dict[str, dict[str, float]]:
    """Server time of the streamagent savers' scripts per operation (µs of ``EVALSHA`` in
    ``INFO commandstats`` around each call; only meaningful on a Redis of its own)."""
    client = redis.Redis.from_url(url)
    out: dict[str, dict[str, float]] = {}
    for name, saver in all_savers.items():
        if not name.startswith("streamagent"):
            continue
        spent = {"put": 0, "get": 0, "writes": 0}
        thread, parent = f"srv-{uuid.uuid4().hex[:8]}", None
        history = [message(i) for i in range(size)]
        for it in range(iterations):
            history = [*history[1:], message(size + it)]
            ck = empty_checkpoint()
            ck["id"] = str(uuid6(clock_seq=it))
            ck["channel_values"] = {"messages": list(history), "branch:to:model": None}
            version = saver.get_next_version(None, None)
            ck["channel_versions"] = {"messages": version, "branch:to:model": version}
            config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
            if parent:
                config["configurable"]["checkpoint_id"] = parent
            u0 = evalsha_usec(client)
            meta = {"source": "loop", "step": it}
            saved = await call(saver, "put", config, ck, meta, dict(ck["channel_versions"]))
            u1 = evalsha_usec(client)
            writes = [("messages", [history[-1]]), ("branch:to:model", None)]
            await call(saver, "put_writes", saved, writes, f"task-{it}")
            u2 = evalsha_usec(client)
            await call(saver, "get_tuple", {"configurable": {"thread_id": thread}})
            u3 = evalsha_usec(client)
            spent["put"] += u1 - u0
            spent["writes"] += u2 - u1
            spent["get"] += u3 - u2
            parent = saved["configurable"]["checkpoint_id"]
        await call(saver, "delete_thread", thread)
        out[name] = {op: usec / iterations for op, usec in spent.items()}
    client.close()
    return out


def chat_graph(saver: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda s: {"messages": [AIMessage(text(len(s["messages"])))]})
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


async def bench_turns(all_savers: dict[str, Any], turns: int = 20) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {n: [] for n in all_savers}
    graphs = {n: chat_graph(s) for n, s in all_savers.items()}
    threads = {n: f"turns-{uuid.uuid4().hex[:8]}" for n in all_savers}
    for i in range(turns):
        for name, graph in graphs.items():
            config = {"configurable": {"thread_id": threads[name]}}
            t0 = time.perf_counter()
            if isinstance(all_savers[name], RedisSaver):
                graph.invoke({"messages": [HumanMessage(text(i))]}, config)
            else:
                await graph.ainvoke({"messages": [HumanMessage(text(i))]}, config)
            out[name].append(time.perf_counter() - t0)
    for name, saver in all_savers.items():
        await call(saver, "delete_thread", threads[name])
    return out


async def bench_storage(
    all_savers: dict[str, Any], url: str, sizes: tuple[int, ...]
) -> dict[str, dict[int, int]]:
    client = redis.Redis.from_url(url)
    out: dict[str, dict[int, int]] = {}
    for name in ("streamagent", "plainredis"):
        if name not in all_savers:
            continue
        saver = all_savers[name]
        out[name] = {}
        for size in sizes:
            thread = f"mem-{uuid.uuid4().hex[:8]}"
            graph = chat_graph(saver)
            client.execute_command("MEMORY PURGE")
            time.sleep(0.2)
            before = int(client.info("memory")["used_memory"])
            for i in range(size // 2):
                await graph.ainvoke(
                    {"messages": [HumanMessage(text(i))]}, {"configurable": {"thread_id": thread}}
                )
            out[name][size] = int(client.info("memory")["used_memory"]) - before
            await saver.adelete_thread(thread)
    client.close()
    return out


def reduce_messages(state: list[Any] | None, writes: list[Any]) -> list[Any]:
    """``add_messages`` over a batch of writes (batching-invariant, as DeltaChannel needs)."""
    out: list[Any] = list(state or [])
    for write in writes:
        out = add_messages(out, write)
    return out


class DeltaState(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(reduce_messages)]


def delta_graph(saver: Any) -> Any:
    builder = StateGraph(DeltaState)
    builder.add_node("model", lambda s: {"messages": [AIMessage(text(len(s["messages"])))]})
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


async def bench_delta(
    all_savers: dict[str, Any], url: str, size: int = 400, reads: int = 5
) -> dict[str, dict[str, float]]:
    """A ``size``-message thread with the plain messages channel and with ``DeltaChannel``:
    Redis memory, write latency (one turn: get + put + writes), read latency (get_state,
    which replays a DeltaChannel through ``get_delta_channel_history``)."""
    client = redis.Redis.from_url(url)
    out: dict[str, dict[str, float]] = {}
    for name in ("plainredis", "streamagent"):
        if name not in all_savers:
            continue
        saver = all_savers[name]
        for label, make in (("", chat_graph), (" + DeltaChannel", delta_graph)):
            graph = make(saver)
            thread = f"delta-{uuid.uuid4().hex[:8]}"
            config = {"configurable": {"thread_id": thread}}
            client.execute_command("MEMORY PURGE")
            time.sleep(0.2)
            before = int(client.info("memory")["used_memory"])
            writes = []
            for i in range(size // 2):
                t0 = time.perf_counter()
                await graph.ainvoke({"messages": [HumanMessage(text(i), id=f"h{i}")]}, config)
                writes.append(time.perf_counter() - t0)
            used = int(client.info("memory")["used_memory"]) - before
            read_times, replay_times = [], []
            # the head, and its parent (with DeltaChannel: not a snapshot, so the read
            # replays the channel's writes back to the last snapshot)
            parent = [c async for c in saver.alist(config, limit=2)][-1].config
            for _ in range(reads):
                t0 = time.perf_counter()
                state = await graph.aget_state(config)
                t1 = time.perf_counter()
                older = await graph.aget_state(parent)
                replay_times.append(time.perf_counter() - t1)
                read_times.append(t1 - t0)
            assert len(state.values["messages"]) == size, (name, label)
            assert len(older.values["messages"]) >= size - 2, (name, label)
            out[name + label] = {
                "bytes": used,
                "write": statistics.median(writes),
                "read": statistics.median(read_times),
                "replay": statistics.median(replay_times),
            }
            await saver.adelete_thread(thread)
    client.close()
    return out


async def bench_lock(all_savers: dict[str, Any], iterations: int) -> dict[str, list[float]]:
    """Turn lock: take and release a thread's lock (``streamagent.memory.turns``), the two
    round trips a turn adds; the head pointer is inside put/get_tuple (see the ops table)."""
    from streamagent.memory.turns import begin_turn

    out: dict[str, list[float]] = {}
    for name, saver in all_savers.items():
        if not name.startswith("streamagent"):
            continue
        out[name] = []
        config = {"configurable": {"thread_id": f"lock-{uuid.uuid4().hex[:8]}"}}
        for _ in range(iterations):
            t0 = time.perf_counter()
            turn = await begin_turn(saver, config)
            assert turn is not None
            await turn.release()
            out[name].append(time.perf_counter() - t0)
    return out


def us(v: float) -> str:
    return f"{v * 1e6:,.0f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions (medians are reported)")
    parser.add_argument("--iterations", type=int, default=150, help="operations per run")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument(
        "--savers",
        help="comma-separated saver names to measure (default: all), e.g. "
        "'plainredis,streamagent,streamagent (sync)'",
    )
    parser.add_argument(
        "--sections",
        default="ops,turns,lock,storage,delta",
        help="comma-separated sections to run: ops, turns, lock, storage, delta, server "
        "(default: all but server)",
    )
    args = parser.parse_args()
    wanted = {n.strip() for n in args.savers.split(",")} if args.savers else None
    sections = {n.strip() for n in args.sections.split(",")}
    url = redis_url()
    print(
        f"Redis: {redis.Redis.from_url(url).info('server')['redis_version']}; runs: {args.runs}\n"
    )
    async with savers(url, args.pg_url, wanted) as all_savers:
        names = list(all_savers)
        ops: dict[int, list[dict[str, dict[str, list[float]]]]] = {20: [], 100: []}
        turn_runs: list[dict[str, list[float]]] = []
        lock_runs: list[dict[str, list[float]]] = []
        for _ in range(args.runs):
            if "lock" in sections:
                lock_runs.append(await bench_lock(all_savers, args.iterations))
            if "ops" in sections:
                for size, runs_of_size in ops.items():
                    runs_of_size.append(await bench_ops(all_savers, size, args.iterations))
            if "turns" in sections:
                turn_runs.append(await bench_turns(all_savers))
        for size, runs in ops.items():
            if not runs:
                continue
            print(
                f"### {size} messages of ~200 tokens in the messages channel (µs, median of runs)\n"
            )
            print(
                "| saver | put p50 | put p99 | get_tuple p50 | get_tuple p99 | put_writes p50 | put_writes p99 |"
            )
            print("|---|---:|---:|---:|---:|---:|---:|")
            for name in names:
                cells = []
                for op in ("put", "get", "writes"):
                    for q in (0.5, 0.99):
                        cells.append(us(statistics.median(pct(r[name][op], q) for r in runs)))
                print(f"| {name} | " + " | ".join(cells) + " |")
            print()
            p50 = {
                (name, op): statistics.median(pct(r[name][op], 0.5) for r in runs)
                for name in names
                for op in ("put", "get", "writes")
            }
            for name in (n for n in names if n.startswith("streamagent") and "plainredis" in names):
                ratios = ", ".join(
                    f"{label} {p50[(name, op)] / p50[('plainredis', op)]:.2f}"
                    for op, label in (
                        ("put", "put"),
                        ("get", "get_tuple"),
                        ("writes", "put_writes"),
                    )
                )
                print(f"{name} / plainredis (p50): {ratios}  ")
            print()
        if turn_runs:
            print("### 20-turn conversation (ms per turn, median of turns, median of runs)\n")
            print("| saver | ms per turn |\n|---|---:|")
        for name in names if turn_runs else ():
            print(
                f"| {name} | {statistics.median(statistics.median(r[name]) for r in turn_runs) * 1e3:.2f} |"
            )
        print()
        if lock_runs:
            print_lock(lock_runs, ops.get(20) or [], names)
        if "server" in sections:
            server_runs = [
                await bench_server(all_savers, url, 20, args.iterations) for _ in range(args.runs)
            ]
            print(
                "### Server time of the scripts at 20 messages (µs per call, INFO commandstats)\n"
            )
            print("| saver | put | get_tuple | put_writes |\n|---|---:|---:|---:|")
            for name in server_runs[0] if server_runs else ():
                cells = [
                    f"{statistics.median(r[name][op] for r in server_runs):.1f}"
                    for op in ("put", "get", "writes")
                ]
                print(f"| {name} | " + " | ".join(cells) + " |")
            print()
        if "delta" in sections:
            delta_runs = [await bench_delta(all_savers, url) for _ in range(args.runs)]
            print_delta(delta_runs)
        if "storage" not in sections:
            return
        storage = await bench_storage(all_savers, url, (100, 200, 400))
        print("### Redis memory per thread (INFO used_memory delta)\n")
        print("| saver | 100 messages | 200 messages | 400 messages |\n|---|---:|---:|---:|")
        for name, row in storage.items():
            print(
                f"| {name} | "
                + " | ".join(f"{row[s] / 1e6:.2f} MB" for s in (100, 200, 400))
                + " |"
            )


def print_lock(
    lock_runs: list[dict[str, list[float]]],
    ops20: list[dict[str, dict[str, list[float]]]],
    names: list[str],
) -> None:
    """Per-turn cost of the turn lock and the head pointer (one turn = lock + release +
    get_tuple + put + put_writes) next to plainredis's get_tuple + put + put_writes."""
    print("### Per-turn cost of the turn lock and head pointer (µs p50, median of runs)\n")
    print(
        "| saver | lock+release | get_tuple (head) | put (head) | put_writes | turn total | "
        "vs plainredis |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")

    def p50(name: str, op: str) -> float:
        return statistics.median(pct(r[name][op], 0.5) for r in ops20) if ops20 else 0.0

    plain = (
        sum(p50("plainredis", op) for op in ("get", "put", "writes"))
        if (ops20 and "plainredis" in names)
        else 0.0
    )
    if plain:
        print(
            f"| plainredis (no lock) | – | {us(p50('plainredis', 'get'))} | "
            f"{us(p50('plainredis', 'put'))} | {us(p50('plainredis', 'writes'))} | "
            f"{us(plain)} | 1.00 |"
        )
    for name in lock_runs[0]:
        lock = statistics.median(pct(r[name], 0.5) for r in lock_runs)
        ops = [p50(name, op) for op in ("get", "put", "writes")] if ops20 else [0.0] * 3
        total = lock + sum(ops)
        ratio = f"{total / plain:.2f}" if plain else "–"
        print(
            f"| {name} | {us(lock)} | {us(ops[0])} | {us(ops[1])} | {us(ops[2])} | "
            f"{us(total)} | {ratio} |"
        )
    print()


def print_delta(runs: list[dict[str, dict[str, float]]]) -> None:
    print("### 400-message thread: messages channel vs DeltaChannel (median of runs)\n")
    print(
        "| saver | Redis memory | write ms per turn | read ms (head) | "
        "read ms (its parent: a replay with DeltaChannel) |"
    )
    print("|---|---:|---:|---:|---:|")
    rows = list(runs[0])
    keys = ("bytes", "write", "read", "replay")
    med = {row: {k: statistics.median(r[row][k] for r in runs) for k in keys} for row in rows}
    for row in rows:
        m = med[row]
        print(
            f"| {row} | {m['bytes'] / 1e6:.2f} MB | {m['write'] * 1e3:.2f} | "
            f"{m['read'] * 1e3:.2f} | {m['replay'] * 1e3:.2f} |"
        )
    base = med.get("plainredis + DeltaChannel")
    if base:
        for row in rows:
            if row.startswith("streamagent"):
                print(
                    f"\n{row} / plainredis + DeltaChannel: storage "
                    f"{med[row]['bytes'] / base['bytes']:.2f}, write "
                    f"{med[row]['write'] / base['write']:.2f}, read "
                    f"{med[row]['read'] / base['read']:.2f}, read of the parent "
                    f"{med[row]['replay'] / base['replay']:.2f}  ",
                    end="",
                )
        print("\n")


if __name__ == "__main__":
    asyncio.run(main())
