"""Client cost of LangChain middleware: streamagent vs ``create_agent``, same three middleware.

Each run: the model calls the ``echo`` tool, then streams a long reply (``--tool-then-text``
server in another process, so this process's CPU time is the client's alone). The three
middleware are the issue's: ``SummarizationMiddleware`` (its summary model on a second scripted
server; the trigger is set so it checks every call but does not fire in this short thread, so
the figure is the hook's own cost), ``ToolCallLimitMiddleware`` (a limit the run stays under)
and a custom ``wrap_model_call`` (a pass-through). Variants run interleaved, round after round;
the table reports medians and ratios.

    ./dev python benchmarks/middleware.py [--rounds 9] [--tokens 2000]

Rows: streamagent without middleware (the streaming benchmark's lean row, for the "no cost
when unused" check), streamagent with the three, ``create_agent`` without middleware and with
the three (streamed with ``stream_mode="messages"``, as the streaming benchmark streams
``create_react_agent``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
warnings.filterwarnings("ignore")

from streaming import Runner, _agent_runner, _echo_tool, measure, start_server  # noqa: E402

SA_PLAIN = "(a) streamagent astream_chunks, no middleware"
SA_MW = "(b) streamagent astream_chunks, 3 middleware"
LC_PLAIN = "(c) create_agent messages, no middleware"
LC_MW = "(d) create_agent messages, 3 middleware"


def _middleware(summary_url: str) -> list[Any]:
    from langchain.agents.middleware import (
        AgentMiddleware,
        SummarizationMiddleware,
        ToolCallLimitMiddleware,
    )
    from langchain_openai import ChatOpenAI

    class PassThrough(AgentMiddleware):
        """A custom wrap_model_call."""

        def wrap_model_call(self, request: Any, handler: Any) -> Any:
            return handler(request)

        async def awrap_model_call(self, request: Any, handler: Any) -> Any:
            return await handler(request)

    summary_model = ChatOpenAI(
        model="gpt-4o",
        base_url=summary_url,
        api_key="bench",
        max_retries=0,  # type: ignore[arg-type]
    )
    return [
        SummarizationMiddleware(model=summary_model, trigger=("tokens", 100_000)),
        ToolCallLimitMiddleware(run_limit=50),
        PassThrough(),
    ]


def _lc_runner(agent: Any, prompt: list[dict[str, str]]) -> Runner:
    async def run() -> tuple[int, float]:
        t0 = time.perf_counter()
        first = 0.0
        n = 0
        async for msg, _meta in agent.astream({"messages": prompt}, stream_mode="messages"):
            if getattr(msg, "content", None) and msg.type == "AIMessageChunk":
                if not n:
                    first = time.perf_counter() - t0
                n += 1
        return n, first

    return run


def make_runners(base_url: str, summary_url: str) -> dict[str, Runner]:
    from langchain.agents import create_agent
    from langchain_openai import ChatOpenAI

    from streamagent import AgentConfig, ModelConfig, build_agent

    echo = _echo_tool()
    config = AgentConfig(model=ModelConfig(model="gpt-4o", base_url=base_url, api_key="bench"))
    options: dict[str, Any] = {
        "model": "gpt-4o",
        "base_url": base_url,
        "api_key": "bench",
        "max_retries": 0,
        "streaming": True,
        "stream_usage": True,
    }
    prompt = [{"role": "user", "content": "Echo hi, then write a long story."}]
    plain = build_agent(tools=[echo], config=config, checkpointer=False)
    with_mw = build_agent(
        tools=[echo], config=config, checkpointer=False, middleware=_middleware(summary_url)
    )
    return {
        SA_PLAIN: _agent_runner(plain, prompt),
        SA_MW: _agent_runner(with_mw, prompt),
        LC_PLAIN: _lc_runner(create_agent(ChatOpenAI(**options), [echo]), prompt),
        LC_MW: _lc_runner(
            create_agent(ChatOpenAI(**options), [echo], middleware=_middleware(summary_url)),
            prompt,
        ),
    }


async def table(base_url: str, summary_url: str, rounds: int, tokens: int) -> str:
    runners = make_runners(base_url, summary_url)
    for runner in runners.values():  # warm-up: imports, connections, caches
        await runner()
    per_chunk: dict[str, list[float]] = {k: [] for k in runners}
    per_run: dict[str, list[float]] = {k: [] for k in runners}
    counts: dict[str, int] = {}
    for _ in range(rounds):
        for name, runner in runners.items():
            cpu, _first, n = await measure(runner)
            per_chunk[name].append(cpu / max(n, 1) * 1e6)
            per_run[name].append(cpu * 1000)
            counts[name] = n
    lc_mw = statistics.median(per_run[LC_MW])
    sa_plain = statistics.median(per_run[SA_PLAIN])
    lines = [
        f"One run = echo tool call + a {tokens}-token reply; medians of {rounds} interleaved "
        "rounds; servers in other processes.",
        "",
        "| client | chunks | CPU µs/chunk | CPU ms/run | × create_agent + 3 middleware "
        "| × streamagent without middleware |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in runners:
        chunk = statistics.median(per_chunk[name])
        run = statistics.median(per_run[name])
        lines.append(
            f"| {name} | {counts[name]} | {chunk:.1f} | {run:.1f} | {run / lc_mw:.2f}× "
            f"| {run / sa_plain:.2f}× |"
        )
    return "\n".join(lines)


async def main_async(rounds: int, tokens: int) -> str:
    servers = [
        start_server(tokens, "--tool-then-text"),
        start_server(20),
    ]
    try:
        (_, base_url), (_, summary_url) = servers
        return await table(base_url, summary_url, rounds, tokens)
    finally:
        for proc, _url in servers:
            proc.terminate()
            proc.wait(timeout=10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=2000)
    args = parser.parse_args(argv)
    print(asyncio.run(main_async(args.rounds, args.tokens)))


if __name__ == "__main__":
    main()
