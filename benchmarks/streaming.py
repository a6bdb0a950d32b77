"""Client cost of streaming: raw SDK vs ChatOpenAI vs create_react_agent vs streamagent.

The scripted servers run in *separate processes* (``python -m streamagent.testing``), so the
CPU time this process spends is the client's alone. Variants run interleaved, round after
round, and the tables report medians and ratios.

    ./dev python benchmarks/streaming.py [--rounds 9] [--tokens 2000] [--tool-runs 20]

Rows (g)-(i) stream the same reply through OpenAI's Responses API (``/v1/responses``); rows
(j)-(k) read it through LangGraph's v3 typed stream (``astream_events(version="v3")``).

Table 1 (one long reply): client CPU µs per streamed content chunk (process CPU time / content
chunks), wall time to first token and the time to first token added over raw AsyncOpenAI.
Table 2 (time to first token): many short runs (a 200-token reply), interleaved, for a stable
median of the time to the first content token and the time added over raw AsyncOpenAI.
Table 3 (one tool round trip): client CPU ms of a run in which the model calls one tool and
then answers with one token, minus the CPU of a run that answers with one token at once —
the cost of one model → tool → model round trip.
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
from dataclasses import replace
from typing import Any

warnings.filterwarnings("ignore")

Runner = Callable[[], Awaitable[tuple[int, float]]]
RAW = "(a) openai AsyncOpenAI"
REACT = "(c) create_react_agent messages"
LEAN = "(e) streamagent astream_chunks, lean (default)"
PLAIN = "(d) streamagent astream_chunks, plain ChatOpenAI"
OFF = "(f) streamagent astream_chunks, fast path off"
RAW_RESPONSES = "(g) openai AsyncOpenAI responses.create"
CHAT_RESPONSES = "(h) ChatOpenAI(use_responses_api=True).astream"
AGENT_RESPONSES = "(i) streamagent astream_chunks, Responses API"
REACT_V3 = "(j) create_react_agent astream_events v3"
AGENT_V3 = "(k) streamagent astream_events v3"
_TTFT_TOKENS = 200


def start_server(tokens: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamagent.testing",
            "--port",
            "0",
            "--reply-tokens",
            str(tokens),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.split(" ", 1)[1]


def _echo_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    return echo


def _agents(base_url: str, tools: list[Any]) -> dict[str, Any]:
    from langchain_openai import ChatOpenAI
    from langgraph.prebuilt import create_react_agent

    from streamagent import AgentConfig, ModelConfig, build_agent
    from streamagent.llm import create_chat_model
    from streamagent.llm.lean.chat_model import LeanChatOpenAI

    options: dict[str, Any] = {
        "model": "gpt-4o",
        "base_url": base_url,
        "api_key": "bench",
        "max_retries": 0,
        "streaming": True,
        "stream_usage": True,
    }
    model_cfg = ModelConfig(model="gpt-4o", base_url=base_url, api_key="bench")
    config = AgentConfig(model=model_cfg)
    return {
        "chat": ChatOpenAI(**options),
        "lean_chat": LeanChatOpenAI(**options),
        "react": create_react_agent(ChatOpenAI(**options), tools=tools),
        "plain": build_agent(
            tools=tools,
            model=create_chat_model(model_cfg, lean=False),
            config=config,
            checkpointer=False,
        ),
        "lean": build_agent(tools=tools, config=config, checkpointer=False),
        "responses_chat": ChatOpenAI(**options, use_responses_api=True),
        "responses": build_agent(
            tools=tools,
            config=AgentConfig(model=replace(model_cfg, use_responses_api=True)),
            checkpointer=False,
        ),
        # ModelConfig(fast_path=False): stock ChatOpenAI, tokens through LangGraph's messages mode
        "off": build_agent(
            tools=tools,
            config=AgentConfig(model=replace(model_cfg, fast_path=False)),
            checkpointer=False,
        ),
    }


def _react_runner(react: Any, prompt: list[dict[str, str]]) -> Runner:
    async def run() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for msg, _meta in react.astream({"messages": prompt}, stream_mode="messages"):
            if getattr(msg, "content", None) and msg.type == "AIMessageChunk":
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    return run


def _v3_runner(graph: Any, prompt: list[dict[str, str]]) -> Runner:
    """LangGraph's v3 typed stream: ``run.messages`` → each call's ``.text`` deltas."""

    async def run() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        stream = await graph.astream_events({"messages": prompt}, version="v3")
        async with stream:
            async for message in stream.messages:
                async for delta in message.text:
                    if delta:
                        if not n:
                            first = time.perf_counter() - t0
                        n += 1
        return n, first

    return run


def _chat_runner(llm: Any, prompt: list[dict[str, str]]) -> Runner:
    async def run() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for chunk in llm.astream(prompt):
            if chunk.text:
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    return run


def _agent_runner(agent: Any, prompt: list[dict[str, str]]) -> Runner:
    from streamagent import astream_chunks

    async def run() -> tuple[int, float]:
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

    return run


def make_runners(base_url: str) -> dict[str, Runner]:
    import openai

    raw = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0)
    agents = _agents(base_url, [])
    prompt = [{"role": "user", "content": "Write a long story."}]

    async def run_raw() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        stream = await raw.chat.completions.create(
            model="gpt-4o",
            messages=prompt,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    async def run_raw_responses() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        stream = await raw.responses.create(model="gpt-4o", input=prompt, stream=True)  # type: ignore[arg-type]
        async for event in stream:
            if event.type == "response.output_text.delta":
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    return {
        RAW: run_raw,
        "(b) ChatOpenAI.astream": _chat_runner(agents["chat"], prompt),
        "(b') LeanChatOpenAI.astream": _chat_runner(agents["lean_chat"], prompt),
        REACT: _react_runner(agents["react"], prompt),
        PLAIN: _agent_runner(agents["plain"], prompt),
        LEAN: _agent_runner(agents["lean"], prompt),
        OFF: _agent_runner(agents["off"], prompt),
        RAW_RESPONSES: run_raw_responses,
        CHAT_RESPONSES: _chat_runner(agents["responses_chat"], prompt),
        AGENT_RESPONSES: _agent_runner(agents["responses"], prompt),
        REACT_V3: _v3_runner(agents["react"], prompt),
        AGENT_V3: _v3_runner(agents["lean"], prompt),
    }


def make_tool_runners(tool_url: str, text_url: str) -> dict[str, tuple[Runner, Runner]]:
    """Per agent: (run with one tool round trip, run answering at once)."""
    echo = _echo_tool()
    with_tool = _agents(tool_url, [echo])
    without = _agents(text_url, [echo])
    prompt = [{"role": "user", "content": "Echo hi."}]
    return {
        REACT: (_react_runner(with_tool["react"], prompt), _react_runner(without["react"], prompt)),
        PLAIN: (_agent_runner(with_tool["plain"], prompt), _agent_runner(without["plain"], prompt)),
        LEAN: (_agent_runner(with_tool["lean"], prompt), _agent_runner(without["lean"], prompt)),
        OFF: (_agent_runner(with_tool["off"], prompt), _agent_runner(without["off"], prompt)),
    }


async def measure(runner: Runner) -> tuple[float, float, int]:
    """(client CPU seconds, seconds to first token, content chunks) of one run."""
    gc.collect()
    cpu0 = time.process_time()
    n, first = await runner()
    return time.process_time() - cpu0, first, n


async def stream_table(base_url: str, rounds: int, tokens: int) -> str:
    runners = make_runners(base_url)
    for runner in runners.values():  # warm-up: imports, connections, caches
        await runner()
    per_chunk: dict[str, list[float]] = {k: [] for k in runners}
    ttft: dict[str, list[float]] = {k: [] for k in runners}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name, runner in runners.items():
            cpu, first, n = await measure(runner)
            per_chunk[name].append(cpu / max(n, 1) * 1e6)
            ttft[name].append(first * 1000)
            counts[name] = n
    base = statistics.median(per_chunk[RAW])
    react = statistics.median(per_chunk[REACT])
    base_ttft = statistics.median(ttft[RAW])
    lines = [
        f"Streaming a {tokens}-token reply; medians of {rounds} interleaved rounds; "
        "server in another process.",
        "",
        "| client | chunks | CPU µs/chunk | × raw SDK | × create_react_agent "
        "| time to first token (ms) | added TTFT vs raw (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        med = statistics.median(per_chunk[name])
        first = statistics.median(ttft[name])
        lines.append(
            f"| {name} | {counts[name]} | {med:.0f} | {med / base:.2f}× | {med / react:.2f}× "
            f"| {first:.2f} | {first - base_ttft:+.2f} |"
        )
    return "\n".join(lines)


async def ttft_table(base_url: str, runs: int, tokens: int) -> str:
    runners = make_runners(base_url)
    for runner in runners.values():
        for _ in range(3):
            await runner()
    firsts: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(runs):
        for name, runner in runners.items():
            gc.collect()
            _n, first = await runner()
            firsts[name].append(first * 1000)
    base = statistics.median(firsts[RAW])
    lines = [
        f"Time to first token, a {tokens}-token reply; {runs} interleaved runs per client.",
        "",
        "| client | p50 (ms) | p90 (ms) | added p50 vs raw (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, values in firsts.items():
        p50 = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        lines.append(f"| {name} | {p50:.2f} | {p90:.2f} | {p50 - base:+.2f} |")
    return "\n".join(lines)


async def tool_table(tool_url: str, text_url: str, runs: int) -> str:
    runners = make_tool_runners(tool_url, text_url)
    for with_tool, without in runners.values():
        await with_tool()
        await without()
    full: dict[str, list[float]] = {k: [] for k in runners}
    base: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(runs):
        for name, (with_tool, without) in runners.items():
            full[name].append((await measure(with_tool))[0] * 1000)
            base[name].append((await measure(without))[0] * 1000)
    overhead = {k: statistics.median(full[k]) - statistics.median(base[k]) for k in runners}
    lines = [
        f"One tool round trip (model → echo tool → model); medians of {runs} interleaved runs.",
        "",
        "| agent | run with tool (CPU ms) | run without (CPU ms) | round-trip overhead (ms) "
        "| × create_react_agent |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in runners:
        lines.append(
            f"| {name} | {statistics.median(full[name]):.2f} | {statistics.median(base[name]):.2f} "
            f"| {overhead[name]:.2f} | {overhead[name] / overhead[REACT]:.2f}× |"
        )
    return "\n".join(lines)


async def main_async(rounds: int, tokens: int, tool_runs: int, ttft_runs: int) -> str:
    servers = [
        start_server(tokens),
        start_server(1, "--tool-then-text"),
        start_server(1),
        start_server(_TTFT_TOKENS),
    ]
    try:
        (_, long_url), (_, tool_url), (_, text_url), (_, short_url) = servers
        first = await stream_table(long_url, rounds, tokens)
        if ttft_runs:
            first += "\n\n" + await ttft_table(short_url, ttft_runs, _TTFT_TOKENS)
        second = await tool_table(tool_url, text_url, tool_runs) if tool_runs else ""
    finally:
        for proc, _url in servers:
            proc.terminate()
            proc.wait(timeout=10)
    return f"{first}\n\n{second}".strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--tool-runs", type=int, default=20)
    parser.add_argument("--ttft-runs", type=int, default=60)
    args = parser.parse_args(argv)
    print(asyncio.run(main_async(args.rounds, args.tokens, args.tool_runs, args.ttft_runs)))


if __name__ == "__main__":
    main()
