"""Where the client CPU goes per streamed chunk: cProfile of one streaming variant.

The scripted server runs in another process (``python -m streamagent.testing``), so the
profile holds the client's work only. Times are divided by the number of content chunks.

    ./dev python benchmarks/profile_streaming.py raw|chat|lean_chat|react|agent|agent_plain
        [--tokens 2000] [--runs 3] [--top 25] [--sort tottime|cumtime]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
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


async def run(variant: str, tokens: int, runs: int, top: int, sort: str) -> str:
    proc, base_url = start_server(tokens)
    try:
        runners = make_runners(base_url)
        runner = runners.get(VARIANTS[variant]) or next(
            r for k, r in runners.items() if k.split(" ")[0] == VARIANTS[variant].split(" ")[0]
        )
        await runner()  # warm-up
        profile = cProfile.Profile()
        chunks = 0
        for _ in range(runs):
            profile.enable()
            n, _first = await runner()
            profile.disable()
            chunks += n
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return report(profile, chunks, top=top, sort=sort)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sort", choices=["tottime", "cumtime"], default="tottime")
    args = parser.parse_args()
    print(asyncio.run(run(args.variant, args.tokens, args.runs, args.top, args.sort)))


if __name__ == "__main__":
    main()
