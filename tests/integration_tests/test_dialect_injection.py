"""Tools written for ``ToolNode`` run in the agent: injected state, store, call id and runtime.

The model is the scripted server over real HTTP; the store is LangGraph's ``InMemoryStore``.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from langchain_core.tools import InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.prebuilt import InjectedState, InjectedStore, ToolRuntime
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore

from streamagent import astream_chunks, create_agent_graph, stream_chunks
from streamagent.testing import Reply, ToolCall
from tests._support.streams import collect, tool_results
from tests.conftest import config_for

SEEN: dict[str, Any] = {}


@tool
def count_messages(
    word: str,
    messages: Annotated[list[Any], InjectedState("messages")],
    call_id: Annotated[str, InjectedToolCallId],
) -> str:
    """Count the thread's messages."""
    SEEN["count"] = (word, len(messages), call_id)
    return f"{word}: {len(messages)} messages"


@tool
async def remember(fact: str, store: Annotated[BaseStore, InjectedStore()]) -> str:
    """Remember a fact in the long-term store."""
    await store.aput(("facts",), "latest", {"fact": fact})
    return "remembered"


@tool
def whoami(greeting: str, runtime: ToolRuntime[dict[str, Any], Any]) -> str:
    """Say who the user is (from the run's context)."""
    runtime.stream_writer({"progress": "looking up"})
    state_size = len(runtime.state["messages"])
    SEEN["runtime"] = (runtime.tool_call_id, runtime.context, runtime.store is not None)
    return f"{greeting} {runtime.context['user']} ({state_size})"


@tool
def whole_state(state: Annotated[dict[str, Any], InjectedState]) -> str:
    """Report the state's keys."""
    return ",".join(sorted(state))


def _schema(request_tools: list[dict[str, Any]], name: str) -> dict[str, Any]:
    for spec in request_tools:
        if spec["function"]["name"] == name:
            return dict(spec["function"]["parameters"])
    raise AssertionError(f"{name} not sent to the model")


async def test_injected_arguments_are_filled_in_and_hidden_from_the_model(
    make_server: Any,
) -> None:
    SEEN.clear()
    server = make_server(
        [
            Reply(
                tool_calls=[
                    # the model tries to set injected names: they are dropped
                    ToolCall(
                        "count_messages",
                        {"word": "n", "messages": ["forged"], "call_id": "forged"},
                        id="c1",
                    ),
                    ToolCall("remember", {"fact": "tea", "store": "forged"}, id="c2"),
                    ToolCall("whoami", {"greeting": "hi", "runtime": "forged"}, id="c3"),
                    ToolCall("whole_state", {}, id="c4"),
                ]
            ),
            "done",
        ]
    )
    store = InMemoryStore()
    agent = create_agent_graph(
        tools=[count_messages, remember, whoami, whole_state], config=config_for(server)
    ).compile(checkpointer=InMemorySaver(), store=store)

    chunks = [
        c async for c in astream_chunks(agent, "hello", thread_id="inj", context={"user": "ada"})
    ]
    assert chunks[-1].type == "done", chunks[-1]
    results = tool_results(chunks)
    assert {k: v["status"] for k, v in results.items()} == dict.fromkeys(
        ("c1", "c2", "c3", "c4"), "success"
    ), results
    assert SEEN["count"] == ("n", 2, "c1")  # the real thread (human + AI), the real call id
    assert results["c1"]["content"] == "n: 2 messages"
    item = await store.aget(("facts",), "latest")
    assert item is not None and item.value == {"fact": "tea"}
    assert results["c3"]["content"] == "hi ada (2)"
    assert SEEN["runtime"] == ("c3", {"user": "ada"}, True)
    assert "messages" in results["c4"]["content"].split(",")

    sent = server.requests[0].tools
    assert set(_schema(sent, "count_messages")["properties"]) == {"word"}
    assert set(_schema(sent, "remember")["properties"]) == {"fact"}
    assert set(_schema(sent, "whoami")["properties"]) == {"greeting"}
    assert _schema(sent, "whole_state").get("properties", {}) == {}


def test_injection_on_the_sync_path(make_server: Any) -> None:
    SEEN.clear()
    server = make_server(
        [Reply(tool_calls=[ToolCall("count_messages", {"word": "w"}, id="s1")]), "ok"]
    )
    agent = create_agent_graph(tools=[count_messages], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )
    chunks = list(stream_chunks(agent, "hello", thread_id="sync-inj"))
    assert chunks[-1].type == "done", chunks[-1]
    assert tool_results(chunks)["s1"]["content"] == "w: 2 messages"
    assert SEEN["count"] == ("w", 2, "s1")


async def test_a_store_tool_without_a_store_is_a_configuration_error(make_server: Any) -> None:
    server = make_server([Reply(tool_calls=[ToolCall("remember", {"fact": "x"}, id="r1")]), "ok"])
    agent = create_agent_graph(tools=[remember], config=config_for(server)).compile()
    chunks = await collect(agent, "hello", thread_id=None)
    assert chunks[-1].type == "error"
    assert chunks[-1].error is not None
    assert chunks[-1].error["type"] == "ConfigurationError"
    assert "store" in chunks[-1].error["message"]


@pytest.mark.parametrize("forged", [{"word": 3}, {}])
async def test_validation_errors_name_only_the_models_arguments(
    make_server: Any, forged: dict[str, Any]
) -> None:
    server = make_server([Reply(tool_calls=[ToolCall("count_messages", forged, id="v1")]), "ok"])
    agent = create_agent_graph(tools=[count_messages], config=config_for(server)).compile()
    chunks = await collect(agent, "hello", thread_id=None)
    result = tool_results(chunks)["v1"]
    assert result["status"] == "error"
    assert "word" in result["content"]
    assert "messages:" not in result["content"] and "call_id:" not in result["content"]


def _dict_tool(handler: Any) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look a word up.",
            "parameters": {
                "type": "object",
                "properties": {"word": {"type": "string"}},
                "required": ["word"],
                "additionalProperties": False,
            },
        },
        "handler": handler,
    }


def lookup_sync(
    word: str,
    messages: Annotated[list[Any], InjectedState("messages")],
    call_id: Annotated[str, InjectedToolCallId],
) -> str:
    return f"{word}/{len(messages)}/{call_id}"


async def lookup_async(word: str, runtime: ToolRuntime[dict[str, Any], Any]) -> str:
    return f"{word}/{runtime.context['user']}/{runtime.tool_call_id}"


@pytest.mark.parametrize(
    ("handler", "forged", "expected"),
    [(lookup_sync, "messages", "tea/2/d1"), (lookup_async, "runtime", "tea/ada/d1")],
)
async def test_the_dict_form_handlers_get_injected_arguments(
    make_server: Any, handler: Any, forged: str, expected: str
) -> None:
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("lookup", {"word": "tea", forged: "forged"}, id="d1")]),
            "ok",
        ]
    )
    agent = create_agent_graph(tools=[_dict_tool(handler)], config=config_for(server)).compile()
    chunks = await collect(agent, "look tea up", context={"user": "ada"}, thread_id=None)
    result = tool_results(chunks)["d1"]
    # the model's value for the injected name was dropped: the schema (no additional
    # properties) held, and the handler got the trusted value
    assert result == {
        "tool_call_id": "d1",
        "name": "lookup",
        "content": expected,
        "status": "success",
    }
    sent = server.requests[0].tools[0]["function"]["parameters"]
    assert set(sent["properties"]) == {"word"}
