"""Tool results stream as each call finishes; the state keeps the calls' order.

The slow tool finishes only after the *consumer* has received the fast tool's result: if the
results were held back until the slowest call finished, it would wait in vain (and report so).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import astream_chunks, create_agent_graph, stream_chunks
from streamagent.testing import Reply, ToolCall
from tests.conftest import config_for

GUARD_SECONDS = 20.0  # only against a hang: the test passes as soon as the result streams

SEEN_FAST = asyncio.Event()
SEEN_FAST_SYNC = threading.Event()


@tool
async def slow(x: int) -> str:
    """A slow tool (async)."""
    try:
        await asyncio.wait_for(SEEN_FAST.wait(), GUARD_SECONDS)
    except TimeoutError:
        return "the fast result never streamed"
    return f"slow {x}"


@tool
async def fast(x: int) -> str:
    """A fast tool (async)."""
    return f"fast {x}"


@tool
def slow_sync(x: int) -> str:
    """A slow tool (sync)."""
    if not SEEN_FAST_SYNC.wait(GUARD_SECONDS):
        return "the fast result never streamed"
    return f"slow {x}"


@tool
def fast_sync(x: int) -> str:
    """A fast tool (sync)."""
    return f"fast {x}"


SCRIPT = [
    Reply(tool_calls=[ToolCall("slow", {"x": 1}, id="s"), ToolCall("fast", {"x": 2}, id="f")]),
    "both done",
]


async def test_results_stream_in_completion_order_and_state_keeps_call_order(
    make_server: Any,
) -> None:
    SEEN_FAST.clear()
    server = make_server(SCRIPT)
    agent = create_agent_graph(tools=[slow, fast], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )
    results: list[dict[str, Any]] = []
    async for chunk in astream_chunks(agent, "go", thread_id="order"):
        if chunk.type == "tool_result" and chunk.tool_result is not None:
            results.append(chunk.tool_result)
            if chunk.tool_result["tool_call_id"] == "f":
                SEEN_FAST.set()
        last = chunk
    assert last.type == "done", last
    assert [(r["tool_call_id"], r["content"]) for r in results] == [
        ("f", "fast 2"),
        ("s", "slow 1"),
    ]
    state = (await agent.aget_state({"configurable": {"thread_id": "order"}})).values
    tool_ids = [m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)]
    assert tool_ids == ["s", "f"]
    # the model is sent the results in the calls' order too
    sent = [m.get("tool_call_id") for m in server.requests[1].messages if m["role"] == "tool"]
    assert sent == ["s", "f"]


def test_results_stream_in_completion_order_on_the_sync_path(make_server: Any) -> None:
    SEEN_FAST_SYNC.clear()
    server = make_server(
        [
            Reply(
                tool_calls=[
                    ToolCall("slow_sync", {"x": 1}, id="s"),
                    ToolCall("fast_sync", {"x": 2}, id="f"),
                ]
            ),
            "both done",
        ]
    )
    agent = create_agent_graph(tools=[slow_sync, fast_sync], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )
    order: list[str] = []
    for chunk in stream_chunks(agent, "go", thread_id="sync-order"):
        if chunk.type == "tool_result" and chunk.tool_result is not None:
            order.append(chunk.tool_result["content"])
            if chunk.tool_result["tool_call_id"] == "f":
                SEEN_FAST_SYNC.set()
    assert order == ["fast 2", "slow 1"]
    state = agent.get_state({"configurable": {"thread_id": "sync-order"}}).values
    assert [m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)] == ["s", "f"]
