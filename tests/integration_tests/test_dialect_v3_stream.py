"""LangGraph's v3 typed stream (``astream_events(version="v3")``) carries the agent's tokens:
text deltas, tool calls and usage, nested under ``run.subgraphs``, fast path on and off."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langgraph.graph import START, MessagesState, StateGraph

from streamagent import create_agent_graph
from streamagent.testing import Reply, ToolCall
from tests._support.agents import echo
from tests.conftest import config_for

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.beta_decorator.LangChainBetaWarning"
)


SCRIPT = [Reply(tool_calls=[ToolCall("echo", {"text": "x"}, id="e1")]), "Hello there friend"]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "stock-path"])
async def test_v3_messages_carry_text_deltas_tool_calls_and_usage(
    make_server: Any, fast_path: bool
) -> None:
    server = make_server(SCRIPT)
    agent = create_agent_graph(
        tools=[echo], config=config_for(server, fast_path=fast_path)
    ).compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = await agent.astream_events({"messages": [("user", "hi")]}, version="v3")
    seen: list[tuple[list[str], Any, Any]] = []
    async for message in run.messages:
        deltas = [delta async for delta in message.text]
        calls = await message.tool_calls
        output = await message.output
        seen.append((deltas, calls, output.usage_metadata))
    assert len(seen) == 2
    first, second = seen
    assert first[1] == [{"type": "tool_call", "id": "e1", "name": "echo", "args": {"text": "x"}}]
    assert second[0] == ["Hello", " there", " friend"]  # deltas, as they streamed
    assert second[1] == []
    assert first[2]["input_tokens"] > 0 and second[2]["output_tokens"] == 3


async def test_v3_shows_a_nested_agents_tokens_under_subgraphs(make_server: Any) -> None:
    server = make_server(SCRIPT)
    inner = create_agent_graph(tools=[echo], config=config_for(server), name="inner")
    builder = StateGraph(MessagesState)
    builder.add_node("inner", inner.compile(name="inner"))
    builder.add_edge(START, "inner")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = await builder.compile().astream_events({"messages": [("user", "hi")]}, version="v3")
    texts: list[str] = []
    async for sub in run.subgraphs:
        async for message in sub.messages:
            texts.append("".join([d async for d in message.text]))
    assert texts == ["", "Hello there friend"]


def _stored_replies(state: Any) -> list[tuple[Any, Any, Any]]:
    return [
        (m.content, m.tool_calls, m.response_metadata["streamed_chunks"])
        for m in state["messages"]
        if m.type == "ai"
    ]


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "stock-path"])
async def test_sync_v3_carries_the_same_tokens_and_stores_the_same_replies_as_async(
    make_server: Any, fast_path: bool
) -> None:
    """``stream_events`` (sync) and ``astream_events`` (async) v3 runs: the same deltas and
    tool calls on the stream, the same replies in the state (text content, counted deltas)."""
    runs: dict[str, tuple[list[Any], Any]] = {}
    for mode in ("sync", "async"):
        server = make_server(SCRIPT)
        agent = create_agent_graph(
            tools=[echo], config=config_for(server, fast_path=fast_path)
        ).compile()
        seen: list[Any] = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if mode == "sync":
                run = agent.stream_events({"messages": [("user", "hi")]}, version="v3")
                for message in run.messages:
                    seen.append((list(message.text), message.tool_calls.get()))
                state = run.output
            else:
                arun = await agent.astream_events({"messages": [("user", "hi")]}, version="v3")
                async for amessage in arun.messages:
                    seen.append(([d async for d in amessage.text], await amessage.tool_calls))
                state = await arun.output()
        runs[mode] = (seen, _stored_replies(state))
    assert runs["sync"] == runs["async"]
    seen, replies = runs["sync"]
    assert seen[1][0] == ["Hello", " there", " friend"]
    assert replies[1] == ("Hello there friend", [], 3)
    assert replies[0][1][0]["name"] == "echo" and replies[0][2] > 0
