"""OpenAI's Responses API: ``ModelConfig(use_responses_api=True)`` / ``reasoning=...`` against
the scripted server's ``/v1/responses`` (the real event stream, over real HTTP)."""

from __future__ import annotations

import warnings
from typing import Any

from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import create_agent_graph, stream_chunks
from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.testing import Fault, Reply, ToolCall
from tests._support.streams import collect, text
from tests.conftest import config_for


@tool
def lookup(city: str) -> str:
    """Look the weather up."""
    return f"{city}: sunny"


SCRIPT = [
    Reply(tool_calls=[ToolCall("lookup", {"city": "Oslo"}, id="call_r1")], prompt_tokens=40),
    Reply(
        "Sunny in Oslo.",
        reasoning_summary="The tool said sunny.",
        prompt_tokens=80,
        cached_tokens=32,
        reasoning_tokens=5,
        completion_tokens=9,
    ),
]


async def test_text_tool_calls_reasoning_usage_and_cost(make_server: Any) -> None:
    server = make_server(SCRIPT)
    cfg = config_for(server, use_responses_api=True)
    agent = create_agent_graph(tools=[lookup], config=cfg).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "weather in Oslo?", thread_id="r")
    done = chunks[-1]
    assert done.type == "done", done
    assert [r.path for r in server.requests] == ["/v1/responses", "/v1/responses"]
    assert [c.tool_call for c in chunks if c.type == "tool_call"] == [
        {"id": "call_r1", "name": "lookup", "args": {"city": "Oslo"}}
    ]
    results = [c.tool_result for c in chunks if c.type == "tool_result"]
    assert results and results[0] is not None and results[0]["content"] == "Oslo: sunny"
    answer = text(chunks)
    assert answer == "Sunny in Oslo."
    thought = "".join(c.content or "" for c in chunks if c.type == "reasoning")
    assert thought == "The tool said sunny."
    assert done.usage is not None
    assert done.usage["cached_input_tokens"] == 32 and done.usage["reasoning_tokens"] == 5
    assert done.usage["input_tokens"] == 120 and done.usage["requests"] == 2
    costs = CostCalculator()
    second = Usage(
        input_tokens=80, cached_input_tokens=32, output_tokens=9, reasoning_tokens=5, requests=1
    )
    first = Usage(input_tokens=40, output_tokens=done.usage["output_tokens"] - 9, requests=1)
    expected = costs.cost(first, model="gpt-4o")
    assert expected is not None
    assert done.cost_usd == expected + (costs.cost(second, model="gpt-4o") or 0)
    # the tool's result went back to the Responses API as a function_call_output
    sent = server.requests[1].body["input"]
    assert any(
        i.get("type") == "function_call_output" and i.get("call_id") == "call_r1" for i in sent
    )


def test_reasoning_options_switch_to_the_responses_api_on_the_sync_path(make_server: Any) -> None:
    server = make_server([Reply("ok", reasoning_summary="short")])
    cfg = config_for(server, reasoning={"effort": "low", "summary": "auto"})
    agent = create_agent_graph(config=cfg).compile()
    chunks = list(stream_chunks(agent, "hi"))
    assert chunks[-1].type == "done", chunks[-1]
    assert server.requests[0].path == "/v1/responses"
    assert server.requests[0].body["reasoning"] == {"effort": "low", "summary": "auto"}
    assert [c.content for c in chunks if c.type == "reasoning"] == ["short"]


async def test_faults_are_retried_as_on_chat_completions(make_server: Any) -> None:
    server = make_server(
        [
            Fault.http(503),
            Reply("cut short here", fault=Fault.disconnect(after_chunks=6)),  # after 2 text deltas
            Reply("whole"),
        ]
    )
    agent = create_agent_graph(config=config_for(server, use_responses_api=True)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    assert chunks[-1].type == "done", chunks[-1]
    retries = [c.retry for c in chunks if c.type == "retry"]
    assert retries and retries[-1] is not None
    assert retries[-1]["error"]["type"] == "StreamBrokenError"
    assert len(server.requests) == 3
    assert text(chunks).endswith("whole")


async def test_a_stream_without_response_completed_is_broken(make_server: Any) -> None:
    server = make_server([Reply("no end", fault=Fault.no_done())] * 4)
    agent = create_agent_graph(config=config_for(server, use_responses_api=True)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    error = chunks[-1].error
    assert chunks[-1].type == "error" and error is not None
    assert error["type"] == "StreamBrokenError" and error["attempts"] == 4


async def test_the_v3_typed_stream_carries_responses_api_text(make_server: Any) -> None:
    server = make_server([Reply("Hello there friend", reasoning_summary="hm")])
    agent = create_agent_graph(config=config_for(server, use_responses_api=True)).compile()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v3 is experimental in LangGraph 1.2
        run = await agent.astream_events({"messages": [("user", "hi")]}, version="v3")
    texts = [[delta async for delta in message.text] async for message in run.messages]
    assert texts == [["Hello", " there", " friend"]]
    assert server.requests[0].path == "/v1/responses"
