"""Client cost of streaming one long reply: raw SDK vs ChatOpenAI vs create_react_agent vs streamagent.

The scripted server runs in a *separate process* (``python -m streamagent.testing``), so the
CPU time this process spends is the client's alone. Variants run interleaved, round after
round, and the table reports medians and ratios to the raw ``openai`` AsyncOpenAI client.

    ./dev python benchmarks/streaming.py [--rounds 7] [--tokens 2000]

Columns: client CPU µs per streamed chunk (process CPU time / content chunks), wall time to
first token, and time to first token added over raw AsyncOpenAI.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable

warnings.filterwarnings("ignore")

Runner = Callable[[], Awaitable[tuple[int, float]]]


def start_server(tokens: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamagent.testing", "--port", "0", "--reply-tokens", str(tokens)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def make_runners(base_url: str) -> dict[str, Runner]:
    import openai
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    from streamagent import AgentConfig, ModelConfig, astream_chunks, build_agent

    raw = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    llm = ChatOpenAI(
        model="gpt-4o",
        base_url=base_url,
        api_key="bench",
        max_retries=0,
        streaming=True,
        stream_usage=True,
    )  # type: ignore[arg-type]
    react = create_react_agent(llm, tools=[])
    agent = build_agent(
        config=AgentConfig(model=ModelConfig(model="gpt-4o", base_url=base_url, api_key="bench")),
        checkpointer=False,
    )
    prompt = [{"role": "user", "content": "Write a long story."}]

    async def run_raw() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        stream = await raw.chat.completions.create(
            model="gpt-4o",
            messages=prompt,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    async def run_chat_openai() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for chunk in llm.astream(prompt):
            if chunk.content:
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    async def run_react() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for msg, _meta in react.astream({"messages": prompt}, stream_mode="messages"):
            if getattr(msg, "content", None) and msg.type == "AIMessageChunk":
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    async def run_streamagent() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for chunk in astream_chunks(agent, prompt, thread_id="bench"):
            if chunk.type == "content":
                if not n:
                    first = time.perf_counter() - t0
                n += 1
            elif chunk.type == "error":
                raise SystemExit(f"streamagent failed: {chunk.error}")
        return n, first

    return {
        "(a) openai AsyncOpenAI": run_raw,
        "(b) ChatOpenAI.astream": run_chat_openai,
        "(c) create_react_agent messages": run_react,
        "(d) streamagent astream_chunks": run_streamagent,
    }


async def measure(runner: Runner) -> tuple[float, float, int]:
    gc.collect()
    cpu0 = time.process_time()
    n, first = await runner()
    cpu = time.process_time() - cpu0
    return cpu / max(n, 1) * 1e6, first * 1000, n


async def main_async(rounds: int, tokens: int) -> str:
    proc, base_url = start_server(tokens)
    try:
        runners = make_runners(base_url)
        for runner in runners.values():  # warm-up: imports, connections, caches
            await runner()
        per_chunk: dict[str, list[float]] = {k: [] for k in runners}
        ttft: dict[str, list[float]] = {k: [] for k in runners}
        counts: dict[str, int] = {}
        for _ in range(rounds):
            for name, runner in runners.items():
                us, first_ms, n = await measure(runner)
                per_chunk[name].append(us)
                ttft[name].append(first_ms)
                counts[name] = n
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    base = statistics.median(per_chunk["(a) openai AsyncOpenAI"])
    base_ttft = statistics.median(ttft["(a) openai AsyncOpenAI"])
    lines = [
        f"Streaming a {tokens}-token reply; medians of {rounds} interleaved rounds; server in another process.",
        "",
        "| client | chunks | CPU µs/chunk | × raw SDK | time to first token (ms) | added TTFT vs raw (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        med = statistics.median(per_chunk[name])
        first = statistics.median(ttft[name])
        lines.append(
            f"| {name} | {counts[name]} | {med:.0f} | {med / base:.2f}× | {first:.2f} | {first - base_ttft:+.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args(argv)
    print(asyncio.run(main_async(args.rounds, args.tokens)))


if __name__ == "__main__":
    main()
