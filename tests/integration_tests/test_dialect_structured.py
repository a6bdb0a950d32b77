"""``response_format``: the validated value in ``state["structured_response"]`` and a
``structured`` chunk; native JSON-schema mode, the tool strategy, one repair, then an error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import BaseModel
from typing_extensions import TypedDict

from streamagent import create_agent_graph, stream_chunks
from streamagent.errors import ConfigurationError
from streamagent.llm.structured import ResponseFormat
from streamagent.testing import Reply, ToolCall
from tests._support.streams import collect, text
from tests.conftest import config_for


class Weather(BaseModel):
    city: str
    celsius: float


class WeatherDict(TypedDict):
    city: str
    celsius: float


WEATHER_SCHEMA = {
    "title": "weather",
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}


@tool
def forecast(city: str) -> str:
    """The weather of a city."""
    return f"{city}: 4 degrees"


SCRIPT = [
    Reply(tool_calls=[ToolCall("forecast", {"city": "Oslo"}, id="f1")]),
    "It is 4 degrees in Oslo.",
    '{"city": "Oslo", "celsius": 4}',
]


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (Weather, Weather(city="Oslo", celsius=4)),
        (WeatherDict, {"city": "Oslo", "celsius": 4.0}),
        (WEATHER_SCHEMA, {"city": "Oslo", "celsius": 4}),
    ],
    ids=["pydantic", "typeddict", "json-schema"],
)
async def test_native_json_schema_mode_after_the_final_answer(
    make_server: Any, schema: Any, expected: Any
) -> None:
    server = make_server(SCRIPT)
    agent = create_agent_graph(
        tools=[forecast], config=config_for(server), response_format=schema
    ).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "weather in Oslo?", thread_id="s")
    assert chunks[-1].type == "done", chunks[-1]
    [structured] = [c for c in chunks if c.type == "structured"]
    assert structured.structured == expected
    assert structured.to_dict()["structured"] == {"city": "Oslo", "celsius": 4}
    answer = text(chunks)
    assert answer == "It is 4 degrees in Oslo."  # the JSON is not streamed as text
    state = (await agent.aget_state({"configurable": {"thread_id": "s"}})).values
    assert state["structured_response"] == expected
    assert state["messages"][-1].text == "It is 4 degrees in Oslo."
    assert (chunks[-1].usage or {})["requests"] == 3
    last = server.requests[2].body
    assert last["response_format"]["type"] == "json_schema"
    assert last["response_format"]["json_schema"]["schema"]["properties"].keys() == {
        "city",
        "celsius",
    }
    assert "tools" not in last


def test_tool_strategy_on_the_sync_path(make_server: Any) -> None:
    server = make_server(
        [
            "It is 4 degrees in Oslo.",
            Reply(tool_calls=[ToolCall("Weather", {"city": "Oslo", "celsius": 4}, id="w")]),
        ]
    )
    agent = create_agent_graph(
        config=config_for(server), response_format=ResponseFormat(Weather, strategy="tool")
    ).compile()
    chunks = list(stream_chunks(agent, "weather?"))
    assert chunks[-1].type == "done", chunks[-1]
    [structured] = [c for c in chunks if c.type == "structured"]
    assert structured.structured == Weather(city="Oslo", celsius=4)
    body = server.requests[1].body
    assert body["tool_choice"] == {"type": "function", "function": {"name": "Weather"}}
    assert [t["function"]["name"] for t in body["tools"]] == ["Weather"]
    assert "response_format" not in body


async def test_invalid_output_gets_one_repair_attempt(make_server: Any) -> None:
    server = make_server(["Oslo is cold.", '{"city": "Oslo"}', '{"city": "Oslo", "celsius": -2}'])
    agent = create_agent_graph(config=config_for(server), response_format=Weather).compile()
    chunks = await collect(agent, "weather?", thread_id=None)
    assert chunks[-1].type == "done", chunks[-1]
    [structured] = [c for c in chunks if c.type == "structured"]
    assert structured.structured == Weather(city="Oslo", celsius=-2)
    repair = server.requests[2].messages
    assert repair[-2] == {"role": "assistant", "content": '{"city": "Oslo"}'}
    assert repair[-1]["role"] == "user" and "celsius" in repair[-1]["content"]


async def test_output_still_invalid_after_the_repair_is_a_typed_error(make_server: Any) -> None:
    server = make_server(["Oslo is cold.", "not json", '{"city": 3}'])
    agent = create_agent_graph(config=config_for(server), response_format=Weather).compile()
    chunks = await collect(agent, "weather?", thread_id=None)
    error = chunks[-1].error
    assert chunks[-1].type == "error" and error is not None
    assert error["type"] == "StructuredOutputError" and error["attempts"] == 2
    assert "repair" in error["message"]
    assert len(server.requests) == 3  # bounded: one answer, one repair


def test_a_structured_output_model_is_refused_at_build_time(make_server: Any) -> None:
    server = make_server([])
    llm = ChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-test")
    with pytest.raises(ConfigurationError, match="response_format"):
        create_agent_graph(model=llm.with_structured_output(Weather))
    with pytest.raises(ConfigurationError, match="response_format"):
        create_agent_graph(model=llm.with_structured_output(Weather, method="json_schema"))
    assert not server.requests


def test_a_typeddict_pydantic_cannot_read_is_refused_at_build_time() -> None:
    import typing

    class Old(typing.TypedDict):
        city: str

    with pytest.raises(ConfigurationError, match="typing_extensions"):
        create_agent_graph(model="gpt-4o", response_format=Old)


def test_the_plain_graph_has_no_structured_node() -> None:
    assert "structured" not in create_agent_graph(model="gpt-4o").nodes
    assert "structured" in create_agent_graph(model="gpt-4o", response_format=Weather).nodes


def test_json_text_of_the_chunk_is_json_ready(make_server: Any) -> None:
    server = make_server(["ok", '{"city": "Oslo", "celsius": 1.5}'])
    agent = create_agent_graph(config=config_for(server), response_format=Weather).compile()
    chunk = next(c for c in stream_chunks(agent, "weather?") if c.type == "structured")
    assert json.loads(json.dumps(chunk.to_dict()))["structured"]["celsius"] == 1.5
