"""The TypeScript service's API (OpenAIService) over the agent, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent.compat import OpenAIService
from streamagent.errors import ConfigurationError, ModelRequestError
from streamagent.testing import Fault, Reply, ToolCall
from tests.conftest import config_for


def ts_weather_tool(calls: list[dict[str, Any]]) -> dict[str, Any]:
    def handler(city: str, unit: str = "celsius") -> str:
        calls.append({"city": city, "unit": unit})
        return f"22 degrees {unit} in {city}"

    return {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                },
                "required": ["city"],
            },
        },
        "handler": handler,
    }


async def test_complete_with_tools_runs_dict_form_tool_and_returns_final_answer(make_server):
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("get_weather", {"city": "Oslo"}, id="w1")]),
            "It is 22 degrees in Oslo.",
        ]
    )
    calls: list[dict[str, Any]] = []
    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    svc.register_tool(ts_weather_tool(calls))
    result = await svc.complete_with_tools(
        [{"role": "user", "content": "weather in Oslo?"}], "session-1"
    )
    assert result.content == "It is 22 degrees in Oslo."
    assert calls == [{"city": "Oslo", "unit": "celsius"}]
    assert result.tool_calls[0]["name"] == "get_weather"
    assert result.tool_results[0]["content"] == "22 degrees celsius in Oslo"
    assert result.usage["requests"] == 2 and result.cost_usd is not None
    # the tool schema reached the model
    sent_tools = server.requests[0].body["tools"]
    assert sent_tools[0]["function"]["name"] == "get_weather"


async def test_dict_tool_schema_violation_reaches_model_as_error_without_calling_handler(
    make_server,
):
    server = make_server(
        [
            Reply(
                tool_calls=[ToolCall("get_weather", {"city": "Oslo", "unit": "kelvin"}, id="w2")]
            ),
            "sorry",
        ]
    )
    calls: list[dict[str, Any]] = []
    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    svc.register_tool(ts_weather_tool(calls))
    result = await svc.complete_with_tools("weather?", "s2")
    assert calls == []
    assert result.tool_results[0]["status"] == "error"
    assert "kelvin" in result.tool_results[0]["content"]


async def test_stream_completion_yields_typed_chunks_and_remembers_session(make_server):
    server = make_server(["one", "two"])
    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    first = [c.type async for c in svc.stream_completion("hello", "s3")]
    assert first[-1] == "done" and "content" in first
    second = "".join([c.content or "" async for c in svc.stream_completion("again", "s3")])
    assert second == "two"
    assert [m["role"] for m in server.requests[1].messages] == ["user", "assistant", "user"]


async def test_register_tool_accepts_langchain_tool_and_decorated_function_and_refuses_duplicates(
    make_server,
):
    server = make_server([])

    @tool
    def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    def whisper(text: str) -> str:
        """Lower-case text."""
        return text.lower()

    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    assert svc.register_tool(shout).name == "shout"
    assert svc.register_tool(whisper).name == "whisper"
    with pytest.raises(ConfigurationError, match="already registered"):
        svc.register_tool(shout)


async def test_complete_with_tools_raises_classified_error(make_server):
    server = make_server([Fault.http(400, message="bad request body")])
    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    with pytest.raises(ModelRequestError, match="bad request body"):
        await svc.complete_with_tools("hi", "s4")


def test_sync_facade(make_server):
    server = make_server(["sync answer"])
    svc = OpenAIService(config_for(server), checkpointer=InMemorySaver())
    assert svc.complete_with_tools_sync("hi", "s5").content == "sync answer"
