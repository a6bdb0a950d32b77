"""A run cut short mid-turn (the process died while a tool ran) continues with
``astream_chunks(agent, None, thread_id=...)``, streaming; the tool runs again (at least once)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import astream_chunks, create_agent_graph, stream_chunks
from streamagent.testing import Reply, ToolCall
from tests._support.streams import collect, text
from tests.conftest import config_for

RUNS: list[str] = []
DONE_IDS: set[str] = set()
STARTED = asyncio.Event()


@tool
async def charge(amount: int, call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Charge the card (idempotent: keyed by the tool call id)."""
    RUNS.append(call_id)
    if len(RUNS) == 1:
        STARTED.set()
        await asyncio.sleep(3600)  # the process "dies" here
    if call_id in DONE_IDS:
        return "already charged"
    DONE_IDS.add(call_id)
    return f"charged {amount}"


async def test_a_crashed_run_continues_and_streams(make_server: Any) -> None:
    RUNS.clear()
    DONE_IDS.clear()
    STARTED.clear()
    server = make_server(
        [Reply(tool_calls=[ToolCall("charge", {"amount": 5}, id="pay1")]), "Paid."]
    )
    agent = create_agent_graph(tools=[charge], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )

    async def first_turn() -> None:
        async for _ in astream_chunks(agent, "pay 5", thread_id="crash"):
            pass

    task = asyncio.create_task(first_turn())
    await STARTED.wait()
    task.cancel()  # the run dies while the tool runs
    await asyncio.gather(task, return_exceptions=True)
    snapshot = await agent.aget_state({"configurable": {"thread_id": "crash"}})
    assert snapshot.next == ("tools",)

    chunks = await collect(agent, None, thread_id="crash")
    assert chunks[-1].type == "done", chunks[-1]
    results = [c.tool_result for c in chunks if c.type == "tool_result"]
    assert results == [
        {"tool_call_id": "pay1", "name": "charge", "content": "charged 5", "status": "success"}
    ]
    assert text(chunks) == "Paid."
    assert RUNS == ["pay1", "pay1"]  # at least once: the interrupted call ran again
    assert (chunks[-1].usage or {})["requests"] == 1  # the model was not asked again for it
    assert len(server.requests) == 2


async def test_continuing_a_thread_without_a_pending_run_is_refused(make_server: Any) -> None:
    server = make_server(["hi"])
    agent = create_agent_graph(config=config_for(server)).compile(checkpointer=InMemorySaver())
    done = await collect(agent, "hello", thread_id="idle")
    assert done[-1].type == "done"
    chunks = await collect(agent, None, thread_id="idle")
    assert [c.type for c in chunks] == ["error"]
    assert chunks[0].error is not None and chunks[0].error["type"] == "InvalidInputError"
    assert "no pending run" in chunks[0].error["message"]


def test_continuing_without_a_checkpointer_is_refused_on_the_sync_path(make_server: Any) -> None:
    server = make_server([])
    agent = create_agent_graph(config=config_for(server)).compile()
    [chunk] = list(stream_chunks(agent, None, thread_id="x"))
    assert chunk.error is not None and "checkpointer" in chunk.error["message"]
