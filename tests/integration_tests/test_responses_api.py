"""The Responses API: ``ModelConfig(use_responses_api=True)`` streams text, reasoning summaries
and tool calls through the agent, with usage (cached and reasoning tokens), cost, retries and
error classes as on Chat Completions — over the scripted server's real ``/v1/responses``
event stream."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import openai
import orjson
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import RetryConfig, StreamChunk, build_agent
from streamagent.llm import create_chat_model
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from tests._support.agents import add
from tests._support.streams import collect, stop_at_the_first_token, text
from tests.conftest import config_for

ANSWER = "The sum is 3, as promised."


def responses_config(server: ScriptedOpenAIServer, **overrides: Any) -> Any:
    return config_for(server, use_responses_api=True, **overrides)


async def run(agent: Any, text: str = "1 + 2?") -> list[StreamChunk]:
    return await collect(agent, text, thread_id="r")


async def test_text_reasoning_tool_call_usage_and_cost_stream_through_the_agent(make_server):
    server = make_server(
        [
            Reply(
                tool_calls=[ToolCall("add", {"a": 1, "b": 2}, id="call_add")],
                reasoning_summary="I should use the add tool.",
                reasoning_tokens=12,
                prompt_tokens=300,
                cached_tokens=256,
            ),
            Reply(ANSWER, prompt_tokens=340, completion_tokens=9),
        ]
    )
    agent = build_agent(tools=[add], config=responses_config(server), checkpointer=InMemorySaver())
    chunks = await run(agent)
    assert [r.path for r in server.requests] == ["/v1/responses", "/v1/responses"]
    reasoning = "".join(c.content or "" for c in chunks if c.type == "reasoning")
    assert reasoning == "I should use the add tool."
    assert text(chunks) == ANSWER
    (call,) = [c.tool_call for c in chunks if c.type == "tool_call"]
    assert call["name"] == "add" and call["args"] == {"a": 1, "b": 2} and call["id"] == "call_add"
    deltas = [c for c in chunks if c.type == "tool_call_delta"]
    assert len(deltas) > 3, "arguments stream in pieces"
    (result,) = [c.tool_result for c in chunks if c.type == "tool_result"]
    assert result["content"] == "3" and result["status"] == "success"
    done = chunks[-1]
    assert done.type == "done"
    assert done.usage["input_tokens"] == 640 and done.usage["cached_input_tokens"] == 256
    assert done.usage["reasoning_tokens"] == 12
    assert done.cost_usd is not None and done.cost_usd > 0
    # the second request carries the call and its output as Responses API input items
    second = server.requests[1].body["input"]
    kinds = [item.get("type") for item in second]
    assert "function_call" in kinds and "function_call_output" in kinds
    output = next(i for i in second if i.get("type") == "function_call_output")
    assert output["call_id"] == "call_add" and output["output"] == "3"


async def test_retries_after_a_429_and_a_broken_stream_then_succeed(make_server):
    server = make_server(
        [
            Fault.http(429, retry_after_ms=20),
            Reply(ANSWER, fault=Fault.disconnect(after_chunks=6)),
            ANSWER,
        ]
    )
    retry = RetryConfig(
        max_retries=3, initial_delay_seconds=0.01, max_delay_seconds=1.0, jitter=False
    )
    agent = build_agent(config=responses_config(server, retry=retry), checkpointer=False)
    chunks = await run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    retries = [c.retry for c in chunks if c.type == "retry"]
    assert retries and retries[-1]["discard_partial_output"] is True
    assert len(server.requests) == 3


@pytest.mark.parametrize(
    ("fault", "expected", "retryable"),
    [
        (Fault.http(401), "AuthenticationError", False),
        (Fault.http(503), "ModelUnavailableError", True),
        (Fault.no_done(), "StreamBrokenError", True),
        (Fault.malformed(after_chunks=4), "StreamBrokenError", True),
    ],
    ids=["401", "503", "no-final-event", "malformed"],
)
async def test_errors_are_classified_as_on_chat_completions(
    make_server, fault, expected, retryable
):
    server = make_server([Reply(ANSWER, fault=fault)])
    agent = build_agent(
        config=responses_config(server, retry=RetryConfig(max_retries=0)), checkpointer=False
    )
    last = (await run(agent))[-1]
    assert last.type == "error" and last.error["type"] == expected
    assert last.error["retryable"] is retryable


async def test_a_step_budget_stops_a_responses_tool_loop(make_server):
    calls = [Reply(tool_calls=[ToolCall("add", {"a": i, "b": 1})]) for i in range(5)]
    server = make_server(calls)
    config = replace(responses_config(server), max_steps=2)
    agent = build_agent(tools=[add], config=config, checkpointer=InMemorySaver())
    last = (await run(agent))[-1]
    assert last.type == "error" and last.error["type"] == "StepLimitExceededError"
    assert len(server.requests) == 2


async def test_the_wire_format_is_the_responses_event_stream(make_server):
    server = make_server([Reply("Hello there.", reasoning_summary="Greet.")] * 2)
    llm = ChatOpenAI(
        model="gpt-4o",
        base_url=server.base_url,
        api_key="test",  # type: ignore[arg-type]
        use_responses_api=True,
        max_retries=0,
        streaming=True,
        timeout=openai.Timeout(10.0),  # a client of its own (see tests/_support/agents.py)
    )
    chunks = [c async for c in llm.astream([HumanMessage("hi")])]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert merged.text == "Hello there."
    assert merged.response_metadata["status"] == "completed"
    # the raw events: every one named, numbered in order, ending with response.completed
    import httpx

    raw = httpx.post(
        f"{server.base_url}/responses", json={"model": "gpt-4o", "input": "hi", "stream": True}
    )
    events = [block for block in raw.content.split(b"\n\n") if block]
    names = [e.split(b"\n", 1)[0].removeprefix(b"event: ").decode() for e in events]
    assert names[0] == "response.created" and names[-1] == "response.completed"
    numbers = [orjson.loads(e.split(b"data: ", 1)[1])["sequence_number"] for e in events]
    assert numbers == list(range(len(events)))


def test_the_lean_transport_leaves_responses_calls_to_chat_openai(make_server):
    server = make_server([])
    model = responses_config(server).model
    llm = create_chat_model(model)
    assert isinstance(llm, LeanChatOpenAI) and llm.lean_request([HumanMessage("hi")]) is None


async def test_a_reader_that_stops_early_cancels_a_responses_run(make_server):
    server = make_server(
        [Reply(ANSWER * 4, token_delay_seconds=0.05), "Second turn."], token_delay_seconds=0.0
    )
    agent = build_agent(config=responses_config(server), checkpointer=InMemorySaver())
    left = await stop_at_the_first_token(agent, "hi", thread_id="r")
    assert not left, f"tasks still running after the reader stopped: {left}"
    assert (await collect(agent, "again", thread_id="r"))[-1].type == "done"
    state = await agent.aget_state({"configurable": {"thread_id": "r"}})
    assert state.values["messages"][-1].text == "Second turn."


async def test_a_token_budget_is_checked_before_a_responses_call(make_server):
    server = make_server([Reply(ANSWER, prompt_tokens=500, completion_tokens=50), ANSWER])
    config = replace(responses_config(server), max_total_tokens=560)
    agent = build_agent(config=config, checkpointer=InMemorySaver())
    first = (await collect(agent, "one", thread_id="b"))[-1]
    assert first.type == "done"
    second = (await collect(agent, "two", thread_id="b"))[-1]
    assert second.type == "error" and second.error["type"] == "BudgetExceededError"
    assert len(server.requests) == 1, "refused before any request"
