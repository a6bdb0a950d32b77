"""The fast path is optional: switched off, the agent is stock ``ChatOpenAI`` over the openai
SDK and stock LangGraph ``messages`` streaming — with the same chunks, usage, cost, retries and
errors as with it on. Each comparison runs the same script over real HTTP with the fast path on
(the default) and off (``ModelConfig(fast_path=False)`` or ``STREAMAGENT_FAST_PATH=0``).

The fast path is the default, and a call it cannot serve as ``ChatOpenAI`` would (a proxy from
the environment, an unusual option) goes through the stock SDK path on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import RetryConfig, build_agent, stream_chunks
from streamagent.config import FAST_PATH_ENV, ModelConfig, fast_path_from_env
from streamagent.llm import create_chat_model
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from tests._support.agents import add, chat_model
from tests._support.callbacks import ModelRunRecorder
from tests._support.streams import collect, observable, run_each_way, text
from tests.conftest import config_for

STORY = "The switch is off, and every token still arrives — in order, once."
SWITCH = ("on", "off")


def agent_for(
    server: ScriptedOpenAIServer, switch: str, *, tools: Any = (), **overrides: Any
) -> Any:
    config = config_for(server, fast_path=switch == "on", **overrides)
    return build_agent(tools=list(tools), config=config, checkpointer=InMemorySaver())


async def run_both(
    make_server: Any, script: list[Any], *, tools: Any = (), **overrides: Any
) -> dict[str, Any]:
    return await run_each_way(
        make_server, script, SWITCH, lambda s, w: agent_for(s, w, tools=tools, **overrides)
    )


def test_the_switch_and_its_environment_variable(monkeypatch):
    monkeypatch.delenv(FAST_PATH_ENV, raising=False)
    assert fast_path_from_env() and ModelConfig(api_key="k").fast_path
    assert type(create_chat_model(ModelConfig(api_key="k"))) is LeanChatOpenAI
    for word in ("0", "false", "OFF", "no"):
        monkeypatch.setenv(FAST_PATH_ENV, word)
        assert not ModelConfig(api_key="k").fast_path
        assert type(create_chat_model(ModelConfig(api_key="k"))) is ChatOpenAI
    monkeypatch.setenv(FAST_PATH_ENV, "1")
    assert ModelConfig(api_key="k").fast_path
    assert type(create_chat_model(ModelConfig(api_key="k", fast_path=False))) is ChatOpenAI


async def test_chunks_usage_cost_and_tool_calls_are_the_same(make_server):
    script = [
        Reply(
            tool_calls=[
                ToolCall("add", {"a": 1, "b": 2}, id="c1"),
                ToolCall("add", '{"a": 3, "b": ', id="c2"),
            ],
            prompt_tokens=900,
            cached_tokens=512,
        ),
        Reply(STORY, prompt_tokens=1000),
    ]
    runs = await run_both(make_server, script, tools=[add])
    on, off = (runs[s][0] for s in SWITCH)
    assert observable(off) == observable(on)
    assert on[-1].type == "done" and on[-1].cost_usd is not None
    assert text(off) == STORY
    assert [r.body for r in runs["off"][1].requests] == [r.body for r in runs["on"][1].requests]


async def test_retry_then_success_is_the_same(make_server):
    script = [
        Fault.http(429, retry_after_ms=50),
        Reply(STORY, fault=Fault.disconnect(after_chunks=4)),
        STORY,
    ]
    retry = RetryConfig(
        max_retries=3, initial_delay_seconds=0.01, max_delay_seconds=1.0, jitter=False
    )
    runs = await run_both(make_server, script, retry=retry)
    on, off = (runs[s][0] for s in SWITCH)
    assert observable(off) == observable(on)
    assert any(c.type == "retry" and c.retry["discard_partial_output"] for c in off)
    assert off[-1].type == "done"


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        pytest.param(Fault.http(429, retry_after_seconds=0), "RateLimitedError", id="429"),
        pytest.param(Fault.http(503), "ModelUnavailableError", id="503"),
        pytest.param(Fault.http(401), "AuthenticationError", id="401"),
        pytest.param(Fault.disconnect(after_chunks=5), "StreamBrokenError", id="disconnect"),
        pytest.param(Fault.no_done(), "StreamBrokenError", id="no-finish-reason"),
        pytest.param(Fault.stall(3.0, after_chunks=4), "ModelUnavailableError", id="read-timeout"),
    ],
)
async def test_each_error_is_the_same(make_server, fault, expected):
    runs = await run_both(
        make_server,
        [Reply(STORY, fault=fault)],
        retry=RetryConfig(max_retries=0),
        timeout_seconds=0.3,
    )
    on, off = (runs[s][0][-1] for s in SWITCH)
    assert on.type == off.type == "error"
    assert on.error == off.error and off.error["type"] == expected


async def test_switched_off_tokens_travel_through_langgraph_messages_mode(make_server, monkeypatch):
    """Off: no token sink — the model run is not tagged ``nostream`` and LangGraph's
    ``messages`` handler sees every token (on: the node hands them to the sink itself)."""
    monkeypatch.delenv(FAST_PATH_ENV, raising=False)
    seen = {}
    for switch in SWITCH:
        server = make_server([STORY])
        agent = agent_for(server, switch)
        handler = ModelRunRecorder()
        chunks = await collect(agent, "hi", config={"callbacks": [handler]})
        assert text(chunks) == STORY
        seen[switch] = any("nostream" in tags for tags in handler.tags)
    assert seen == {"on": True, "off": False}


async def test_environment_variable_turns_the_sink_off_for_every_agent(make_server, monkeypatch):
    monkeypatch.setenv(FAST_PATH_ENV, "0")
    server = make_server([STORY])
    config = config_for(server)
    assert config.model.fast_path is False
    agent = build_agent(config=config, checkpointer=InMemorySaver())
    tokens = []
    async for message, _meta in agent.astream(
        {"messages": [HumanMessage("hi")]},
        {"configurable": {"thread_id": "m"}},
        stream_mode="messages",
    ):
        if isinstance(message, AIMessageChunk) and message.content:
            tokens.append(message.content)
    assert "".join(tokens) == STORY
    sync = list(
        stream_chunks(
            build_agent(config=config_for(make_server([STORY])), checkpointer=False), "hi"
        )
    )
    assert sync[-1].type == "done"


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_every_base_url_form_the_sdk_accepts_works_the_same_on_both_paths(
    make_server, suffix
):
    paths = {}
    for switch in SWITCH:
        server = make_server([STORY])
        root = server.base_url.removesuffix("/v1")
        config = config_for(server, fast_path=switch == "on", base_url=root + suffix)
        llm = create_chat_model(config.model)
        assert isinstance(llm, LeanChatOpenAI) is (switch == "on")
        agent = build_agent(model=llm, config=config, checkpointer=False)
        chunks = await collect(agent, "hi", thread_id=None)
        assert chunks[-1].type == "done", chunks[-1]
        paths[switch] = [r.path for r in server.requests]
    assert paths["on"] == paths["off"]
    expected = "/v1/chat/completions" if suffix.startswith("/v1") else "/chat/completions"
    assert paths["on"] == [expected]


async def test_a_proxy_from_the_environment_sends_the_call_through_the_sdk_path(
    make_server, monkeypatch
) -> None:
    # The scripted server doubles as a forward proxy (it serves absolute-form request targets):
    # the endpoint's host does not exist, so the reply proves the proxy was used.
    server = make_server(["via the proxy"])
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    llm = LeanChatOpenAI(
        model="gpt-4o", base_url="http://model.invalid/v1", api_key="sk-t", max_retries=0
    )
    assert llm.lean_request([HumanMessage("hi")]) is None, "proxied: not the lean transport"
    reply = "".join([str(c.content) async for c in llm.astream("hi")])
    assert reply == "via the proxy"
    assert len(llm._lean_async_clients) == 0


@pytest.mark.fast_path
async def test_default_model_is_lean_and_streams_through_its_own_client(make_server):
    server = make_server([STORY])
    config = config_for(server)
    llm = create_chat_model(config.model)
    assert isinstance(llm, LeanChatOpenAI)
    agent = build_agent(model=llm, config=config, checkpointer=InMemorySaver())
    chunks = await collect(agent, "hi")
    assert text(chunks) == STORY
    assert len(llm._lean_async_clients) == 1, "the lean transport served the call"
    assert len(server.requests) == 1 and server.requests[0].path.endswith("/chat/completions")


async def test_unusual_options_fall_back_to_chat_openai(make_server):
    server = make_server([STORY])
    llm = chat_model(server, cls=LeanChatOpenAI, include_response_headers=True)
    assert llm.lean_request([HumanMessage("hi")]) is None
    chunks = [c async for c in llm.astream("hi")]
    assert "headers" in chunks[0].response_metadata, "the SDK path served it"
    assert "".join(str(c.content) for c in chunks) == STORY
