"""Where the client CPU goes per streamed chunk: cProfile of one streaming variant.

The scripted server runs in another process (``python -m streamagent.testing``), so the
profile holds the client's work only. Times are divided by the number of content chunks.

    ./dev python benchmarks/profile_streaming.py raw|chat|lean_chat|react|agent|agent_plain
        [--tokens 2000] [--runs 3] [--top 25] [--sort tottime|cumtime]
        [--paced SESSIONS --token-delay-ms MS] [--no-profile]

``--paced`` runs SESSIONS streams at once from a server that pauses before every chunk, as in
``benchmarks/load.py``: each chunk is then its own socket read and its own loop wake-up, which
is where a service spends its CPU (a burst of buffered chunks hides that cost). With
``--no-profile`` only the client CPU per chunk is printed (the profiler inflates it).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from streaming import make_runners, start_server  # noqa: E402

warnings.filterwarnings("ignore")

VARIANTS = {
    "raw": "(a) openai AsyncOpenAI",
    "chat": "(b) ChatOpenAI.astream",
    "lean_chat": "(b') LeanChatOpenAI.astream",
    "react": "(c) create_react_agent messages",
    "agent_plain": "(d) streamagent astream_chunks, plain ChatOpenAI",
    "agent": "(e) streamagent astream_chunks, lean (default)",
}


def report(profile: cProfile.Profile, chunks: int, *, top: int, sort: str) -> str:
    stats = pstats.Stats(profile)
    rows = []
    total = 0.0
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tt
        rows.append(
            (tt if sort == "tottime" else ct, tt, ct, nc, f"{Path(filename).name}:{line}({name})")
        )
    rows.sort(reverse=True)
    lines = [f"total profiled CPU per chunk: {total / chunks * 1e6:.1f} µs (profiler inflates it)"]
    lines.append(f"{'tottime µs/chunk':>17} {'cumtime µs/chunk':>17} {'calls/chunk':>12}  function")
    for _key, tt, ct, nc, where in rows[:top]:
        lines.append(
            f"{tt / chunks * 1e6:17.2f} {ct / chunks * 1e6:17.2f} {nc / chunks:12.2f}  {where}"
        )
    return "\n".join(lines)


async def run(
    variant: str,
    tokens: int,
    runs: int,
    top: int,
    sort: str,
    *,
    sessions: int = 1,
    token_delay_ms: float = 0.0,
    profiled: bool = True,
) -> str:
    extra = ("--token-delay-ms", f"{token_delay_ms:.4f}") if token_delay_ms else ()
    proc, base_url = start_server(tokens, *extra)
    try:
        runners = make_runners(base_url)
        runner = runners.get(VARIANTS[variant]) or next(
            r for k, r in runners.items() if k.split(" ")[0] == VARIANTS[variant].split(" ")[0]
        )
        await asyncio.gather(*(runner() for _ in range(sessions)))  # warm-up, connections
        profile = cProfile.Profile()
        chunks = 0
        gc.collect()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(runs):
            if profiled:
                profile.enable()
            results = await asyncio.gather(*(runner() for _ in range(sessions)))
            if profiled:
                profile.disable()
            chunks += sum(n for n, _first in results)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    head = (
        f"{VARIANTS[variant]}: {sessions} session(s), {chunks} chunks in {wall:.1f} s, "
        f"client CPU {cpu / chunks * 1e6:.1f} µs/chunk ({cpu / wall:.0%} of one core)"
        + (" with the profiler on" if profiled else "")
    )
    if not profiled:
        return head
    return head + "\n" + report(profile, chunks, top=top, sort=sort)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=["tottime", "cumtime"], default="tottime")
    parser.add_argument("--paced", type=int, default=1, metavar="SESSIONS")
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    print(
        asyncio.run(
            run(
                args.variant,
                args.tokens,
                args.runs,
                args.top,
                args.sort,
                sessions=args.paced,
                token_delay_ms=args.token_delay_ms,
                profiled=not args.no_profile,
            )
        )
    )


if __name__ == "__main__":
    main()
