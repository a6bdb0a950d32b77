"""Load: N concurrent agent sessions in ONE client process, streaming from scripted servers.

    ./dev python benchmarks/load.py            # N = 100, 500, 1000; streamagent vs create_react_agent
    ./dev python benchmarks/load.py --quick    # N = 50, 200; shorter windows

Every session is one full agent turn on its own thread with Redis memory (``AsyncRedisSaver``
on ``REDIS_URL``, else redis://127.0.0.1:6379/0, else an embedded server; a unique key prefix,
deleted afterwards): model → one ``lookup`` tool call → tool → model → a long text reply,
streamed at a fixed per-token delay by ``python -m streamagent.testing`` processes (``--servers``,
sessions spread round-robin; their CPU is not this process's). Agents: ``streamagent``
(``build_agent`` with what it uses by default, via ``astream_chunks``), ``react``
(``langgraph.prebuilt.create_react_agent`` on the plain ChatOpenAI, same saver, same tool,
``stream_mode="messages"``) and, when ``create_chat_model`` has a ``lean=`` flag,
``streamagent-plain`` (``build_agent`` on ``lean=False``; select with ``--kinds``).

Per (agent, N) a fresh worker process sweeps the per-session rate: aggregate target 1,500
tokens/s, doubling while the steps pass (halving while they fail), then geometric bisection
until the bound is known within 25 % or ``--max-steps`` is reached. A step starts all
N sessions (staggered 2 ms apart), waits until every session streams text (the *ramp*: the
model → tool → model round trip and checkpoints of N sessions), then measures a window of
``--window`` seconds in which all N sessions stream, then cancels them. In the window:
aggregate tokens/s, client CPU µs per chunk (process CPU time / content chunks; ``1e6 / that``
is the one-core ceiling), the *added* inter-chunk latency (client-observed gap between two
content chunks of a reply minus the server's scheduled gap) p50/p99/max, the servers' CPU, the
garbage collector's pauses and the machine's load average. A step passes when p99 < 100 ms, no
session failed and the sessions received at least 90 % of the target rate: the servers send on
a fixed schedule (a late chunk is followed at once by those due meanwhile), so a client that
keeps up receives the rate asked for, while one that falls behind slows the servers through
TCP flow control (its read buffers are bounded) — gaps stay short, but tokens arrive late. Peak RSS is the worker's ``VmHWM`` (high-water mark) over its whole sweep.

After warm-up the worker sets up the garbage collector as ``--gc`` says: ``freeze`` (default)
calls ``gc.freeze()``: the ~200k objects created by importing LangChain/LangGraph/OpenAI
otherwise make every full collection a ~50-200 ms pause, which alone puts p99 over 100 ms at
any rate; ``tune`` calls the opt-in ``streamagent.observability.tune_gc()`` (freeze + larger thresholds, as a
server would); ``none`` leaves CPython's defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

import _loadlib as lib  # noqa: E402

P99_BOUND_MS = 100.0
#: A step also fails when the sessions received less than this share of the target rate: a
#: client that falls behind slows the servers down through TCP flow control (its read buffers
#: are bounded), which keeps every gap short but delivers fewer tokens than asked for.
KEEP_UP_FRACTION = 0.9
GC_MODES = {
    "none": "CPython defaults",
    "freeze": "gc.freeze() after warm-up",
    "tune": "streamagent.observability.tune_gc() after warm-up (freeze, thresholds 50,000/20/100)",
}
STAGGER_SECONDS = 0.002
SETTLE_SECONDS = 0.5


@dataclass
class Step:
    """One measured rate of one (agent, N) sweep."""

    sessions: int
    rate_per_session: float
    target_tokens_per_s: float
    tokens_per_s: float = 0.0
    cpu_us_per_chunk: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    server_cpu_pct: float = 0.0
    gc_max_pause_ms: float = 0.0
    gc_gen2_max_ms: float = 0.0
    gc_young_max_ms: float = 0.0
    load_average: float = 0.0
    gc_total_ms: float = 0.0
    gc_collections: int = 0
    client_cpu_pct: float = 0.0
    ramp_seconds: float = 0.0
    startup_cpu_ms_per_session: float = 0.0
    rss_mb: float = 0.0
    errors: int = 0
    ended_early: int = 0
    first_error: str | None = None
    note: str = ""

    @property
    def passed(self) -> bool:
        return (
            not self.note
            and self.errors == 0
            and self.ended_early == 0
            and self.p99_ms < P99_BOUND_MS
            and self.kept_up
        )

    @property
    def kept_up(self) -> bool:
        return self.tokens_per_s >= KEEP_UP_FRACTION * self.target_tokens_per_s


@dataclass
class Sweep:
    """All steps of one (agent, N) worker."""

    kind: str
    sessions: int
    model_class: str = ""
    baseline_rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    steps: list[Step] = field(default_factory=list)


# ------------------------------------------------------------------------------ one step
class StepRun:
    """The sessions of one step and what the window saw."""

    def __init__(self, n: int, delay_s: float) -> None:
        self.n = n
        self.delay_s = delay_s
        self.measuring = False
        self.streaming = 0
        self.all_streaming = asyncio.Event()
        self.gaps: list[float] = []
        self.window_chunks = 0
        self.ramp_chunks = 0
        self.results: list[lib.TurnResult | None] = [None] * n

    async def session(self, i: int, runner: lib.Runner, thread_id: str) -> None:
        await asyncio.sleep(i * STAGGER_SECONDS)
        last: float | None = None

        def on_content(now: float) -> None:
            nonlocal last
            if last is None:
                self.streaming += 1
                if self.streaming == self.n:
                    self.all_streaming.set()
            if self.measuring:
                self.window_chunks += 1
                if last is not None:
                    self.gaps.append(now - last - self.delay_s)
            else:
                self.ramp_chunks += 1
            last = now

        self.results[i] = await runner(thread_id, f"Question {i}: look it up.", on_content)


async def run_step(
    kind: str, n: int, rate: float, saver: Any, args: argparse.Namespace, step_no: int
) -> tuple[Step, str]:
    step = Step(sessions=n, rate_per_session=rate, target_tokens_per_s=rate * n)
    # start-up CPU of N sessions + the paced tool call and first token of the last one
    ramp_timeout = max(10.0, n * args.ramp_seconds_per_session) + 10 / rate
    tokens = math.ceil(rate * (ramp_timeout + args.window + 10))
    delay_s = 1.0 / rate
    with lib.ServerPool(args.servers, reply_tokens=tokens, token_delay_ms=delay_s * 1000) as pool:
        made = [lib.make_runner(kind, url, saver) for url in pool.urls]
        run = StepRun(n, delay_s)
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        tasks = [
            asyncio.create_task(run.session(i, made[i % len(made)][0], f"s{step_no}-{i}"))
            for i in range(n)
        ]
        try:
            await asyncio.wait_for(run.all_streaming.wait(), ramp_timeout)
        except TimeoutError:
            step.note = f"only {run.streaming}/{n} sessions streaming after {ramp_timeout:.0f} s"
        step.ramp_seconds = time.perf_counter() - t0
        await asyncio.sleep(SETTLE_SECONDS)
        cpu1, srv1, w1 = time.process_time(), pool.cpu_seconds(), time.perf_counter()
        ramp_cpu, ramp_chunks = cpu1 - cpu0, run.ramp_chunks
        with lib.GcPauses() as gc_pauses:
            run.measuring = gc_pauses.active = True
            await asyncio.sleep(args.window)
            run.measuring = gc_pauses.active = False
        cpu2, srv2, w2 = time.process_time(), pool.cpu_seconds(), time.perf_counter()
        step.rss_mb = lib.rss_mb()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    window = w2 - w1
    chunks = max(run.window_chunks, 1)
    step.tokens_per_s = run.window_chunks / window
    step.cpu_us_per_chunk = (cpu2 - cpu1) / chunks * 1e6
    step.client_cpu_pct = (cpu2 - cpu1) / window * 100
    step.server_cpu_pct = (srv2 - srv1) / window * 100
    gaps = sorted(run.gaps)
    step.p50_ms = lib.percentile(gaps, 50) * 1000
    step.p99_ms = lib.percentile(gaps, 99) * 1000
    step.max_ms = (gaps[-1] if gaps else 0.0) * 1000
    step.gc_max_pause_ms, step.gc_total_ms = gc_pauses.max_ms, gc_pauses.total_ms
    step.gc_collections = len(gc_pauses.pauses)
    step.gc_gen2_max_ms = gc_pauses.max_ms_of(2)
    step.gc_young_max_ms = max(gc_pauses.max_ms_of(0), gc_pauses.max_ms_of(1))
    step.load_average = os.getloadavg()[0]
    streaming_cost = ramp_chunks * step.cpu_us_per_chunk / 1e6
    step.startup_cpu_ms_per_session = max(0.0, ramp_cpu - streaming_cost) / n * 1000
    finished = [r for r in run.results if r is not None]
    failed = [r for r in finished if r.error]
    step.errors = len(failed)
    step.ended_early = len(finished) - len(failed)
    step.first_error = failed[0].error if failed else None
    return step, made[0][1]


def next_rate(steps: list[Step], start: float, max_steps: int) -> float | None:
    """Aggregate target of the next step: double while passing (halve while failing), then
    bisect geometrically until the bound is within 25 %."""
    if not steps:
        return start
    if len(steps) >= max_steps or steps[-1].note:
        return None  # out of steps, or sessions could not even start: the rate is not the limit
    passed = [s.target_tokens_per_s for s in steps if s.passed]
    failed = [s.target_tokens_per_s for s in steps if not s.passed]
    if not failed:
        return max(passed) * 2
    if not passed:
        return min(failed) / 2
    low, high = max(passed), min(failed)
    if high / low <= 1.25:
        return None
    return math.sqrt(low * high)


async def worker(args: argparse.Namespace) -> Sweep:
    lib.raise_fd_limit()
    n, kind = args.sessions, args.kind
    sweep = Sweep(kind=kind, sessions=n)
    saver = await lib.make_saver(args.redis_url, args.prefix, max_connections=args.redis_pool)
    with lib.ServerPool(1, reply_tokens=20, token_delay_ms=0) as pool:  # warm-up: imports etc.
        runner, sweep.model_class = lib.make_runner(kind, pool.urls[0], saver)
        for i in range(3):
            await runner(f"warm-{i}", "warm up", lambda _t: None)
    gc.collect()
    if args.gc == "freeze":
        gc.freeze()  # import-time objects leave the collector's view (see the module docstring)
    elif args.gc == "tune":
        import streamagent.observability

        streamagent.observability.tune_gc()
    sweep.baseline_rss_mb = lib.rss_mb()
    step_no = 0
    while (target := next_rate(sweep.steps, args.start_tokens_per_s, args.max_steps)) is not None:
        step_no += 1
        step, _ = await run_step(kind, n, target / n, saver, args, step_no)
        sweep.steps.append(step)
        print(
            f"  [{kind} N={n}] target {step.target_tokens_per_s:,.0f} tok/s -> "
            f"{step.tokens_per_s:,.0f} tok/s, p99 +{step.p99_ms:.1f} ms, "
            f"{step.cpu_us_per_chunk:.0f} µs/chunk, client CPU {step.client_cpu_pct:.0f} %, "
            f"servers {step.server_cpu_pct:.0f} %, load {step.load_average:.1f}, "
            f"GC max gen2 {step.gc_gen2_max_ms:.0f} young {step.gc_young_max_ms:.0f} ms "
            f"({step.gc_collections}x, {step.gc_total_ms:.0f} ms), ramp {step.ramp_seconds:.1f} s, "
            f"errors {step.errors}{'' if step.kept_up else ', below 90 % of the target rate'} "
            f"{'PASS' if step.passed else 'FAIL'} {step.note} "
            f"{step.first_error or ''}",
            file=sys.stderr,
            flush=True,
        )
    sweep.peak_rss_mb = lib.peak_rss_mb()
    return sweep


# ------------------------------------------------------------------------------ orchestration
def run_worker(kind: str, n: int, url: str, prefix: str, args: argparse.Namespace) -> Sweep:
    cmd = [
        sys.executable, str(Path(__file__).resolve()), "--worker", "--kind", kind,
        "--sessions", str(n), "--redis-url", url, "--prefix", prefix,
        "--window", str(args.window), "--servers", str(args.servers),
        "--start-tokens-per-s", str(args.start_tokens_per_s), "--max-steps", str(args.max_steps),
        "--redis-pool", str(args.redis_pool),
        "--gc", args.gc,
        "--ramp-seconds-per-session", str(args.ramp_seconds_per_session),
    ]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"worker {kind} N={n} failed with exit status {proc.returncode}")
    data = json.loads(lines[-1])
    steps = [Step(**s) for s in data.pop("steps")]
    return Sweep(**data, steps=steps)


def best(sweep: Sweep) -> Step | None:
    passed = [s for s in sweep.steps if s.passed]
    return max(passed, key=lambda s: s.tokens_per_s) if passed else None


def summary_table(sweeps: list[Sweep]) -> str:
    headers = [
        "N", "agent", "sustained tokens/s (p99 < 100 ms)", "tokens/s per session",
        "client CPU µs/chunk", "1-core ceiling tok/s", "added gap p50 / p99 (ms)",
        "first failing target",
        "ramp (s)", "start-up CPU ms/session", "peak RSS (MB)",
    ]  # fmt: skip
    rows = []
    for sw in sweeps:
        ok = best(sw)
        failing = [s for s in sw.steps if not s.passed]
        fail = min(failing, key=lambda s: s.target_tokens_per_s) if failing else None
        fail_text = (
            f"{fail.target_tokens_per_s:,.0f} (p99 {fail.p99_ms:.0f} ms"
            + ("" if fail.kept_up else f", {fail.tokens_per_s:,.0f} received")
            + (f", {fail.errors} errors" if fail.errors else "")
            + (f", {fail.note}" if fail.note else "")
            + ")"
            if fail
            else "—"
        )
        if ok is None:
            rows.append([str(sw.sessions), sw.kind, "none passed", "—", "—", "—", "—", fail_text,
                         "—", "—", f"{sw.peak_rss_mb:.0f}"])  # fmt: skip
            continue
        rows.append([
            f"{sw.sessions:,}", sw.kind, f"**{ok.tokens_per_s:,.0f}**",
            f"{ok.rate_per_session:.1f}", f"{ok.cpu_us_per_chunk:.0f}",
            f"{1e6 / ok.cpu_us_per_chunk:,.0f}", f"{ok.p50_ms:.1f} / {ok.p99_ms:.1f}", fail_text, f"{ok.ramp_seconds:.1f}",
            f"{ok.startup_cpu_ms_per_session:.1f}", f"{sw.peak_rss_mb:.0f}",
        ])  # fmt: skip
    return lib.markdown_table(headers, rows, "rlrrrrrlrrr")


def steps_table(sweeps: list[Sweep]) -> str:
    headers = [
        "N", "agent", "target tok/s", "sustained tok/s", "CPU µs/chunk", "client CPU %",
        "servers CPU %", "p50 / p99 / max added (ms)", "GC max pause (ms)", "load avg",
        "RSS in window (MB)", "result",
    ]  # fmt: skip
    rows = []
    for sw in sweeps:
        for s in sw.steps:
            rows.append([
                f"{sw.sessions:,}", sw.kind, f"{s.target_tokens_per_s:,.0f}",
                f"{s.tokens_per_s:,.0f}", f"{s.cpu_us_per_chunk:.0f}",
                f"{s.client_cpu_pct:.0f}", f"{s.server_cpu_pct:.0f}",
                f"{s.p50_ms:.1f} / {s.p99_ms:.1f} / {s.max_ms:.0f}",
                f"{s.gc_max_pause_ms:.0f}", f"{s.load_average:.1f}", f"{s.rss_mb:.0f}",
                "pass"
                if s.passed
                else " ".join(
                    part
                    for part in ("fail", "" if s.kept_up else "(below 90 % of target)", s.note,
                                 s.first_error or "")
                    if part
                ),
            ])  # fmt: skip
    return lib.markdown_table(headers, rows, "rlrrrrrrrrrl")


def orchestrate(args: argparse.Namespace) -> str:
    kinds = args.kinds or ["streamagent", "react"]
    available = lib.agent_kinds_available()
    for kind in kinds:
        if kind not in available:
            raise SystemExit(f"agent kind {kind!r} is not available here (have: {available})")
    sizes = args.sessions or ([50, 200] if args.quick else [100, 500, 1000])
    sweeps: list[Sweep] = []
    started = time.perf_counter()
    with lib.redis_target() as (url, redis_desc):
        prefix = lib.new_prefix("load")
        try:
            for n in sizes:
                for kind in kinds:
                    print(f"[load] {kind} with N={n} ...", file=sys.stderr, flush=True)
                    sweeps.append(run_worker(kind, n, url, prefix, args))
        finally:
            deleted = lib.delete_prefix(url, prefix)
    elapsed = time.perf_counter() - started
    models = sorted({f"{sw.kind}: {sw.model_class}" for sw in sweeps})
    rss = {sw.kind: statistics.median([s.baseline_rss_mb for s in sweeps if s.kind == sw.kind])
           for sw in sweeps}  # fmt: skip
    header = [
        f"Load: one client process, N sessions (each a full turn: model → `{lib.TOOL_NAME}` tool "
        f"→ model, `AsyncRedisSaver` memory on {redis_desc}), {args.servers} scripted server "
        f"process(es), window {args.window:.0f} s per step; CPU {os.cpu_count()} cores "
        f"(shared with other jobs); garbage collector: {GC_MODES[args.gc]}; run took {elapsed / 60:.1f} min; {deleted} Redis keys cleaned up.",
        f"Chat models: {', '.join(models)}. Baseline RSS after warm-up: "
        + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items())
        + ".",
        "",
    ]
    return "\n".join([*header, summary_table(sweeps), "", "All steps:", "", steps_table(sweeps)])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 50, 200 and 4 s windows")
    parser.add_argument(
        "--sessions", type=int, nargs="*", help="the N values (default 100 500 1000)"
    )
    parser.add_argument("--kinds", nargs="*", choices=lib.AGENT_KINDS)
    parser.add_argument("--window", type=float, help="seconds measured per step (8; quick 4)")
    parser.add_argument("--servers", type=int, default=2, help="scripted server processes")
    parser.add_argument("--start-tokens-per-s", type=float, default=1500.0)
    parser.add_argument("--max-steps", type=int, help="steps per sweep (5; quick 3)")
    parser.add_argument("--redis-pool", type=int, default=64, help="Redis connections per worker")
    parser.add_argument("--ramp-seconds-per-session", type=float, default=0.06,
                        help="ramp timeout per session (min 10 s)")  # fmt: skip
    parser.add_argument("--gc", choices=list(GC_MODES), default="freeze",
                        help="collector set-up after warm-up (default freeze)")  # fmt: skip
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.window is None:
        args.window = 4.0 if args.quick else 8.0
    if args.max_steps is None:
        args.max_steps = 3 if args.quick else 5
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.worker:
        args.sessions = args.sessions[0]
        sweep = asyncio.run(worker(args))
        print(json.dumps(asdict(sweep)), flush=True)
        os._exit(0)  # the result is out; do not wait for connection finalizers
    print(orchestrate(args))


if __name__ == "__main__":
    main()
