"""Scale-out: agent throughput with 1 vs 2 worker processes sharing one Redis (and a Cluster).

    ./dev python benchmarks/scaleout.py               # plain Redis, then a 3-node Cluster
    ./dev python benchmarks/scaleout.py --quick       # plain Redis only, 1 round, 4 s

``--sessions`` sessions (default 64) are split evenly across the workers. Each session runs
full agent turns back to back on its own thread (``build_agent`` + ``astream_chunks``: model →
``lookup`` tool → model → a ``--reply-tokens`` text reply, ``AsyncRedisSaver`` memory) for
``--seconds``; the scripted servers (separate processes) stream without delay, so the workers are
CPU-bound. Workers warm up, report READY, start together on GO, and are cancelled at the
deadline; turns completed and content chunks received before it are counted. Configurations run
interleaved for ``--rounds`` rounds; the table shows medians. Redis: ``REDIS_URL``, else
redis://127.0.0.1:6379/0, else an embedded server (a unique key prefix, deleted afterwards); the
Cluster is three masters started from the embedded redis-server binary.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import _loadlib as lib  # noqa: E402


# ------------------------------------------------------------------------------ worker
async def worker(args: argparse.Namespace) -> dict[str, Any]:
    lib.raise_fd_limit()
    saver = await lib.make_saver(args.redis_url, args.prefix)
    runners = [lib.make_runner("streamagent", url, saver)[0] for url in args.server_urls]
    for i in range(3):
        await runners[0](f"warm-{args.tag}-{i}", "warm up", lambda _t: None)
    gc.collect()
    gc.freeze()
    print("READY", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # GO
    counts = {"turns": 0, "tokens": 0, "errors": 0}
    first_error: list[str] = []

    def on_content(_now: float) -> None:
        counts["tokens"] += 1

    async def session(i: int) -> None:
        runner = runners[i % len(runners)]
        thread_id = f"{args.tag}-s{i}"
        for turn in range(1_000_000):
            result = await runner(thread_id, f"turn {turn}: look it up", on_content)
            if result.error:
                counts["errors"] += 1
                first_error[:1] = [result.error]
            else:
                counts["turns"] += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    tasks = [asyncio.create_task(session(i)) for i in range(args.worker_sessions)]
    await asyncio.sleep(args.seconds)
    snapshot = dict(counts)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        print(f"worker {args.tag}: a session ignores cancellation:", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    return {
        **snapshot,
        "seconds": elapsed,
        "cpu_pct": cpu / elapsed * 100,
        "rss_mb": lib.rss_mb(),
        "first_error": first_error[0] if first_error else None,
    }


# ------------------------------------------------------------------------------ orchestration
def run_config(
    workers: int, url: str, prefix: str, servers: list[str], tag: str, args: argparse.Namespace
) -> dict[str, float]:
    """Start ``workers`` processes, GO together, sum their counts."""
    per_worker = args.sessions // workers
    procs = []
    for w in range(workers):
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--worker", "--redis-url", url,
            "--prefix", prefix, "--tag", f"{tag}-w{w}", "--worker-sessions", str(per_worker),
            "--seconds", str(args.seconds), "--server-urls", *servers,
        ]  # fmt: skip
        procs.append(
            subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        )
    results = []
    try:
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            if line != "READY":
                raise SystemExit(f"worker did not start: {line!r}")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("GO\n")
            proc.stdin.flush()
        for proc in procs:
            out, _ = proc.communicate(timeout=args.seconds + 120)
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errors = sum(r["errors"] for r in results)
    if errors:
        first = next(r["first_error"] for r in results if r["first_error"])
        print(f"  {errors} failed turns, first: {first}", file=sys.stderr)
    seconds = statistics.mean(r["seconds"] for r in results)
    return {
        "turns_per_s": sum(r["turns"] for r in results) / seconds,
        "tokens_per_s": sum(r["tokens"] for r in results) / seconds,
        "cpu_pct": sum(r["cpu_pct"] for r in results),
        "rss_mb": max(r["rss_mb"] for r in results),
        "errors": errors,
    }


def measure(url: str, label: str, servers: list[str], args: argparse.Namespace) -> list[list[str]]:
    """Rows of the table for one Redis deployment."""
    prefix = lib.new_prefix("scaleout")
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    try:
        for r in range(args.rounds):
            for workers in (1, 2):
                result = run_config(workers, url, prefix, servers, f"r{r}x{workers}", args)
                runs[workers].append(result)
                print(
                    f"  [{label}] round {r + 1}, {workers} worker(s): "
                    f"{result['tokens_per_s']:,.0f} tok/s, {result['turns_per_s']:.1f} turns/s, "
                    f"CPU {result['cpu_pct']:.0f} %",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if not url.startswith("redis-cluster://"):
            lib.delete_prefix(url, prefix)
    rows = []
    base = statistics.median(x["tokens_per_s"] for x in runs[1])
    for workers in (1, 2):
        tok = statistics.median(x["tokens_per_s"] for x in runs[workers])
        turns = statistics.median(x["turns_per_s"] for x in runs[workers])
        cpu = statistics.median(x["cpu_pct"] for x in runs[workers])
        rss = max(x["rss_mb"] for x in runs[workers])
        errors = sum(int(x["errors"]) for x in runs[workers])
        rows.append([
            label, str(workers), f"{tok:,.0f}", f"{turns:.1f}", f"{tok / base:.2f}×",
            f"{cpu:.0f}", f"{rss:.0f}", str(errors),
        ])  # fmt: skip
    return rows


def orchestrate(args: argparse.Namespace) -> str:
    started = time.perf_counter()
    rows: list[list[str]] = []
    with (
        lib.ServerPool(args.servers, reply_tokens=args.reply_tokens, token_delay_ms=0) as pool,
        lib.redis_target() as (url, desc),
    ):
        print(f"[scaleout] {desc}", file=sys.stderr, flush=True)
        rows += measure(url, "Redis", pool.urls, args)
        if args.cluster:
            with lib.redis_cluster() as cluster_url:
                print("[scaleout] 3-node Redis Cluster", file=sys.stderr, flush=True)
                rows += measure(cluster_url, "Redis Cluster (3 masters)", pool.urls, args)
    headers = [
        "Redis", "workers", "tokens/s", "turns/s", "× 1 worker", "workers' CPU %",
        "RSS per worker (MB)", "failed turns",
    ]  # fmt: skip
    intro = (
        f"Scale-out: {args.sessions} sessions split across the workers, full turns back to back "
        f"(model → tool → model, {args.reply_tokens}-token replies, `AsyncRedisSaver`), "
        f"{args.servers} scripted server process(es) without delay, {args.seconds:.0f} s per "
        f"run, medians of {args.rounds} interleaved round(s), Redis: {desc}; "
        f"{os.cpu_count()} cores shared with the servers and other jobs; took "
        f"{(time.perf_counter() - started) / 60:.1f} min."
    )
    return "\n".join([intro, "", lib.markdown_table(headers, rows, "lrrrrrrr")])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s, no Cluster")
    parser.add_argument("--sessions", type=int, default=64, help="sessions in total")
    parser.add_argument("--seconds", type=float, help="measured seconds per run (8; quick 4)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3; quick 1)")
    parser.add_argument("--reply-tokens", type=int, default=100)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--cluster", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--tag", help=argparse.SUPPRESS)
    parser.add_argument("--worker-sessions", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-urls", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (4.0 if args.quick else 8.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.cluster is None:
        args.cluster = not args.quick
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        import faulthandler

        faulthandler.dump_traceback_later(args.seconds + 90, exit=True)
        print(json.dumps(asyncio.run(worker(args))), flush=True)
        os._exit(0)  # the result is out; do not wait for connection finalizers
    print(orchestrate(args))


if __name__ == "__main__":
    main()
