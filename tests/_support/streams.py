"""Run an agent and read what it streams."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from streamagent import StreamChunk, astream_chunks
from streamagent.testing import ScriptedOpenAIServer

#: The chunk fields that carry wall-clock measurements (left out where runs are compared).
TIMING = ("latency_seconds", "time_to_first_token_seconds")


async def collect(
    graph: Any, messages: Any, *, thread_id: str | None = "t", **kwargs: Any
) -> list[StreamChunk]:
    """Every chunk of one ``astream_chunks`` run (thread ``"t"`` unless told otherwise)."""
    return [c async for c in astream_chunks(graph, messages, thread_id=thread_id, **kwargs)]


def text(chunks: list[StreamChunk], *, agent: str | None = None) -> str:
    """The streamed answer: the content chunks joined (of one ``agent`` when given)."""
    return "".join(
        c.content or ""
        for c in chunks
        if c.type == "content" and (agent is None or c.agent == agent)
    )


def kinds(chunks: list[StreamChunk]) -> list[str]:
    """The chunk types in order, each run of one type counted once."""
    out: list[str] = []
    for c in chunks:
        if not out or out[-1] != c.type:
            out.append(c.type)
    return out


def tool_results(chunks: list[StreamChunk]) -> dict[str, dict[str, Any]]:
    """The ``tool_result`` chunks' results by tool call id."""
    return {c.tool_result["tool_call_id"]: c.tool_result for c in chunks if c.type == "tool_result"}


def observable(chunks: list[StreamChunk]) -> list[dict[str, Any]]:
    """Chunks as dicts without wall-clock fields: what two runs of one script must share."""
    return [{k: v for k, v in c.to_dict().items() if k not in TIMING} for c in chunks]


async def run_each_way(
    make_server: Callable[..., ScriptedOpenAIServer],
    script: list[Any],
    ways: tuple[str, ...],
    agent_of: Callable[[ScriptedOpenAIServer, str], Any],
    *,
    prompt: str = "hi",
) -> dict[str, tuple[list[StreamChunk], ScriptedOpenAIServer, Any]]:
    """Run the same ``script`` once per way, each on a server of its own, through the agent
    ``agent_of(server, way)`` builds: ``{way: (chunks, server, agent)}``, to compare."""
    out = {}
    for way in ways:
        server = make_server(list(script))
        agent = agent_of(server, way)
        out[way] = (await collect(agent, prompt), server, agent)
    return out


async def stop_at_the_first_token(
    graph: Any, messages: Any, *, thread_id: str
) -> set[asyncio.Task[Any]]:
    """Read ``astream_chunks`` up to its first content chunk, close it, and return the tasks
    the run started that are still running (a reader that stops early must leave none)."""
    before = asyncio.all_tasks()
    stream = astream_chunks(graph, messages, thread_id=thread_id)
    async for chunk in stream:
        if chunk.type == "content":
            break
    await stream.aclose()
    return {t for t in asyncio.all_tasks() - before if not t.done()}
