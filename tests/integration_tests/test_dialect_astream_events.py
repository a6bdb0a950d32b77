"""LangGraph's v3 typed stream (``astream_events(version="v3")``, experimental in langgraph
1.2) carries the agent's tokens: ``run.messages`` yields one stream per model call whose
``.text`` deltas are the reply's tokens — as it does for ``create_react_agent`` — with the fast
path on and off, and the agent's retries, usage and tool loop unchanged."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import RetryConfig, build_agent
from streamagent.testing import Fault, Reply, ToolCall
from streamagent.testing.wire import split_pieces
from tests._support.agents import add
from tests.conftest import config_for

STORY = "Typed streams, token by token, for every model call."

pytestmark = pytest.mark.filterwarnings(
    "ignore:The v3 streaming protocol:langchain_core._api.beta_decorator.LangChainBetaWarning"
)


async def texts_of(graph: Any, text: str = "hi") -> list[list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = await graph.astream_events(
            {"messages": [("user", text)]}, {"configurable": {"thread_id": "v3"}}, version="v3"
        )
    out: list[list[str]] = []
    async with run:
        async for message in run.messages:
            out.append([delta async for delta in message.text])
    return out


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path-on", "fast-path-off"])
async def test_run_messages_carry_every_token_of_the_agent(make_server, fast_path):
    server = make_server([STORY])
    agent = build_agent(config=config_for(server, fast_path=fast_path), checkpointer=False)
    texts = await texts_of(agent)
    assert texts == [list(split_pieces(STORY))]
    state = agent.get_graph()  # the graph is unchanged: still prune/model/tools
    assert "model" in state.nodes


async def test_a_tool_loop_streams_each_model_call_and_keeps_usage(make_server):
    server = make_server(
        [Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})], prompt_tokens=50), Reply(STORY)]
    )
    agent = build_agent(tools=[add], config=config_for(server), checkpointer=InMemorySaver())
    texts = await texts_of(agent, "1 + 2?")
    assert len(texts) == 2 and "".join(texts[1]) == STORY
    state = await agent.aget_state({"configurable": {"thread_id": "v3"}})
    assert [m.type for m in state.values["messages"]] == ["human", "ai", "tool", "ai"]
    assert state.values["usage"]["requests"] == 2 and state.values["usage"]["input_tokens"] >= 50


async def test_a_retried_call_streams_again_and_the_run_succeeds(make_server):
    server = make_server([Reply(STORY, fault=Fault.disconnect(after_chunks=4)), STORY])
    retry = RetryConfig(
        max_retries=2, initial_delay_seconds=0.01, max_delay_seconds=0.1, jitter=False
    )
    agent = build_agent(config=config_for(server, retry=retry), checkpointer=InMemorySaver())
    texts = await texts_of(agent)
    assert "".join(texts[-1]) == STORY
    assert len(server.requests) == 2
    state = await agent.aget_state({"configurable": {"thread_id": "v3"}})
    final = state.values["messages"][-1]
    assert final.content == STORY and final.response_metadata["attempts"] == 2


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path-on", "fast-path-off"])
async def test_astream_events_v2_carries_every_token_of_the_agent(make_server, fast_path):
    server = make_server([STORY])
    agent = build_agent(config=config_for(server, fast_path=fast_path), checkpointer=False)
    tokens = [
        event["data"]["chunk"].content
        async for event in agent.astream_events({"messages": [("user", "hi")]}, version="v2")
        if event["event"] == "on_chat_model_stream" and event["data"]["chunk"].content
    ]
    assert tokens == list(split_pieces(STORY))
