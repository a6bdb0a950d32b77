"""The lean transport (``LeanChatOpenAI``, the default) behaves exactly like plain ``ChatOpenAI``.

Every test runs the same script twice over real HTTP — once through the plain ``ChatOpenAI``
(``create_chat_model(..., lean=False)``), once through the default lean client — each against
its own :class:`~streamagent.testing.ScriptedOpenAIServer`, and compares what users can observe:
the request on the wire, LangGraph's ``messages`` stream, typed chunks, callbacks, usage, cost,
tool calls and the class of every error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_openai import ChatOpenAI
from langchain_openai.chat_models._client_utils import StreamChunkTimeoutError
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import RetryConfig, StreamChunk, astream_chunks, build_agent, stream_chunks
from streamagent.llm import create_chat_model
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from tests._support.agents import add, chat_model
from tests._support.callbacks import ModelRunRecorder, SyncTokenRecorder
from tests._support.streams import observable, run_each_way
from tests.conftest import config_for

MODES = ("plain", "lean")
STORY = "Once upon a time, a small agent streamed 42 tokens — and nobody lost one."


def agent_for(server: ScriptedOpenAIServer, mode: str, *, tools: Any = (), **overrides: Any) -> Any:
    config = config_for(server, **overrides)
    llm = create_chat_model(config.model, lean=mode == "lean")
    assert isinstance(llm, LeanChatOpenAI) is (mode == "lean")
    return build_agent(model=llm, tools=list(tools), config=config, checkpointer=InMemorySaver())


async def run_both(
    make_server: Callable[..., ScriptedOpenAIServer],
    script: list[Any],
    *,
    tools: Any = (),
    **overrides: Any,
) -> dict[str, tuple[list[StreamChunk], ScriptedOpenAIServer, Any]]:
    return await run_each_way(
        make_server, script, MODES, lambda s, m: agent_for(s, m, tools=tools, **overrides)
    )


async def test_request_on_the_wire_is_the_same(make_server):
    runs = await run_both(
        make_server, [Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})]), STORY], tools=[add]
    )
    plain, lean = (runs[m][1].requests for m in MODES)
    assert [r.body for r in lean] == [r.body for r in plain]
    assert [r.path for r in lean] == [r.path for r in plain]
    for p, q in zip(plain, lean, strict=True):
        assert (
            q.headers["authorization"]
            == p.headers["authorization"]
            == "Bearer sk-test-not-a-real-key"
        )
        assert q.headers["content-type"] == "application/json"
        for name in ("user-agent", "x-stainless-lang", "accept"):
            assert q.headers.get(name) == p.headers.get(name), name
    assert lean[0].body["stream"] is True and lean[0].body["stream_options"] == {
        "include_usage": True
    }


async def test_typed_chunks_usage_and_cost_are_identical(make_server):
    script = [Reply(STORY, prompt_tokens=1200, cached_tokens=1000, reasoning_tokens=7)]
    runs = await run_both(make_server, script)
    plain, lean = (runs[m][0] for m in MODES)
    assert observable(lean) == observable(plain)
    done = lean[-1]
    assert done.type == "done"
    assert done.usage["input_tokens"] == 1200 and done.usage["cached_input_tokens"] == 1000
    assert done.cost_usd is not None and done.cost_usd == plain[-1].cost_usd
    p_msg = (await runs["plain"][2].aget_state({"configurable": {"thread_id": "t"}})).values[
        "messages"
    ][-1]
    l_msg = (await runs["lean"][2].aget_state({"configurable": {"thread_id": "t"}})).values[
        "messages"
    ][-1]
    assert l_msg.content == p_msg.content == STORY
    assert l_msg.usage_metadata == p_msg.usage_metadata
    for key in (
        "finish_reason",
        "model_name",
        "system_fingerprint",
        "model_provider",
        "cost_usd",
        "streamed_chunks",
    ):
        assert l_msg.response_metadata.get(key) == p_msg.response_metadata.get(key), key
    assert l_msg.response_metadata["finish_reason"] == "stop"


async def test_langgraph_messages_mode_carries_the_same_tokens(make_server):
    tokens: dict[str, list[str]] = {}
    for mode in MODES:
        server = make_server([STORY])
        agent = agent_for(server, mode)
        seen: list[str] = []
        async for message, meta in agent.astream(
            {"messages": [HumanMessage("hi")]},
            {"configurable": {"thread_id": "m"}},
            stream_mode="messages",
        ):
            if isinstance(message, AIMessageChunk) and message.content:
                assert meta["langgraph_node"] == "model"
                seen.append(message.content)
        tokens[mode] = seen
    assert tokens["lean"] == tokens["plain"]
    assert "".join(tokens["lean"]) == STORY and len(tokens["lean"]) > 10


async def test_callbacks_see_start_every_token_and_end_with_usage(make_server):
    recorders = {}
    for mode in MODES:
        server = make_server([Reply(STORY, prompt_tokens=50)])
        agent = agent_for(server, mode)
        recorder = ModelRunRecorder()
        async for _ in astream_chunks(
            agent, "hi", thread_id="cb", config={"callbacks": [recorder]}
        ):
            pass
        recorders[mode] = recorder
    plain, lean = recorders["plain"], recorders["lean"]
    assert lean.events == plain.events == ["start", "end"]
    assert all(c is not None for c in lean.token_chunks), "each token comes with its chunk"
    assert lean.tokens == plain.tokens and "".join(lean.tokens) == STORY
    assert lean.result is not None and plain.result is not None
    l_gen, p_gen = lean.result.generations[0][0], plain.result.generations[0][0]
    assert l_gen.message.usage_metadata == p_gen.message.usage_metadata
    assert l_gen.message.usage_metadata["input_tokens"] == 50
    assert l_gen.generation_info == p_gen.generation_info
    assert l_gen.generation_info["finish_reason"] == "stop"


async def test_parallel_and_broken_tool_calls_are_identical(make_server):
    script = [
        Reply(
            tool_calls=[
                ToolCall("add", {"a": 1, "b": 2}, id="c1"),
                ToolCall("add", '{"a": 3, "b": ', id="c2"),  # truncated JSON from the model
                ToolCall("add", {"a": 5, "b": 8}, id="c3"),
            ]
        ),
        Reply("Done adding."),
    ]
    runs = await run_both(make_server, script, tools=[add])
    plain, lean = (runs[m][0] for m in MODES)
    assert observable(lean) == observable(plain)
    calls = [c.tool_call for c in lean if c.type == "tool_call"]
    assert [c["id"] for c in calls] == ["c1", "c3", "c2"] or sorted(c["id"] for c in calls) == [
        "c1",
        "c2",
        "c3",
    ]
    broken = next(c for c in calls if c["id"] == "c2")
    assert broken["args"] is None and broken["invalid_args"] == '{"a": 3, "b": '
    deltas = [c for c in lean if c.type == "tool_call_delta"]
    assert len(deltas) > 6, "argument deltas stream as they arrive"
    results = {
        c.tool_result["tool_call_id"]: c.tool_result for c in lean if c.type == "tool_result"
    }
    assert results["c1"]["content"] == "3" and results["c3"]["content"] == "13"
    assert results["c2"]["status"] == "error"
    p_ai = (await runs["plain"][2].aget_state({"configurable": {"thread_id": "t"}})).values[
        "messages"
    ][1]
    l_ai = (await runs["lean"][2].aget_state({"configurable": {"thread_id": "t"}})).values[
        "messages"
    ][1]
    assert isinstance(l_ai, AIMessage)
    assert l_ai.tool_calls == p_ai.tool_calls and l_ai.invalid_tool_calls == p_ai.invalid_tool_calls


FAULTS = [
    pytest.param(Fault.http(429, retry_after_seconds=0), "RateLimitedError", id="429"),
    pytest.param(Fault.http(500), "ModelUnavailableError", id="500"),
    pytest.param(Fault.http(503), "ModelUnavailableError", id="503"),
    pytest.param(Fault.http(400), "ModelRequestError", id="400"),
    pytest.param(Fault.http(401), "AuthenticationError", id="401"),
    pytest.param(Fault.http(404), "ModelRequestError", id="404"),
    pytest.param(
        Fault.http(400, code="context_length_exceeded", message="maximum context length"),
        "ContextTooLongError",
        id="context-length",
    ),
    pytest.param(Fault.disconnect(after_chunks=0), "StreamBrokenError", id="disconnect-at-start"),
    pytest.param(
        Fault.disconnect(after_chunks=1), "StreamBrokenError", id="disconnect-before-token"
    ),
    pytest.param(
        Fault.disconnect(after_chunks=5), "StreamBrokenError", id="disconnect-after-tokens"
    ),
    pytest.param(Fault.malformed(after_chunks=0), "StreamBrokenError", id="malformed-first"),
    pytest.param(Fault.malformed(after_chunks=4), "StreamBrokenError", id="malformed-after-tokens"),
    pytest.param(Fault.no_done(), "StreamBrokenError", id="no-finish-reason"),
    pytest.param(Fault.stall(3.0), "ModelUnavailableError", id="read-timeout-before-token"),
    pytest.param(
        Fault.stall(3.0, after_chunks=4), "ModelUnavailableError", id="read-timeout-after-tokens"
    ),
]


@pytest.mark.parametrize(("fault", "expected"), FAULTS)
async def test_each_fault_gives_the_same_error_class(make_server, fault, expected):
    reply = Reply(STORY, fault=fault)
    runs = await run_both(
        make_server, [reply], retry=RetryConfig(max_retries=0), timeout_seconds=0.3
    )
    errors = {m: runs[m][0][-1] for m in MODES}
    assert errors["plain"].type == errors["lean"].type == "error"
    assert errors["lean"].error["type"] == errors["plain"].error["type"] == expected
    lean, plain = dict(errors["lean"].error), dict(errors["plain"].error)
    if fault.kind == "malformed":  # orjson and json word the parse error differently
        prefix = "the model sent a malformed stream chunk: "
        assert lean.pop("message").startswith(prefix) and plain.pop("message").startswith(prefix)
    assert lean == plain, "same class, message, retryable, attempts"


async def test_retry_after_hint_and_retry_then_success_match(make_server):
    script = [
        Fault.http(429, retry_after_ms=120),
        Reply(STORY, fault=Fault.disconnect(after_chunks=4)),
        STORY,
    ]
    retry = RetryConfig(
        max_retries=3, initial_delay_seconds=0.01, max_delay_seconds=1.0, jitter=False
    )
    runs = await run_both(make_server, script, retry=retry)
    plain, lean = (runs[m][0] for m in MODES)
    assert observable(lean) == observable(plain)
    assert lean[-1].type == "done"
    retry_chunk = next(c for c in lean if c.type == "retry")
    assert retry_chunk.retry["discard_partial_output"] is True
    server = runs["lean"][1]
    gap = server.requests[1].received_at - server.requests[0].received_at
    assert gap >= 0.11, f"retry-after-ms 120 was not honoured ({gap:.3f}s)"


async def test_sync_stream_chunks_are_identical(make_server):
    chunks = {}
    for mode in MODES:
        server = make_server([Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 2})]), STORY])
        agent = agent_for(server, mode, tools=[add])
        chunks[mode] = list(stream_chunks(agent, "hi", thread_id="s"))
    assert observable(chunks["lean"]) == observable(chunks["plain"])
    assert chunks["lean"][-1].type == "done"


@pytest.mark.parametrize("mode", MODES)
def test_sync_errors_match(make_server, mode):
    server = make_server([Reply(STORY, fault=Fault.malformed(after_chunks=3)), Fault.http(503)])
    agent = agent_for(server, mode, retry=RetryConfig(max_retries=0))
    assert list(stream_chunks(agent, "hi", thread_id="a"))[-1].error["type"] == "StreamBrokenError"
    assert (
        list(stream_chunks(agent, "hi", thread_id="b"))[-1].error["type"] == "ModelUnavailableError"
    )


@pytest.mark.parametrize("cls", [ChatOpenAI, LeanChatOpenAI])
async def test_stream_chunk_timeout_is_honoured(make_server, cls):
    # the HTTP read timeout stays 10 s: only the gap between parsed chunks can fire
    server = make_server([Reply(STORY, fault=Fault.stall(2.0, after_chunks=3))])
    llm = chat_model(server, cls=cls, stream_chunk_timeout=0.2)
    got: list[str] = []
    with pytest.raises(StreamChunkTimeoutError):
        async for chunk in llm.astream("hi"):
            got.append(str(chunk.content))
    assert got, "chunks before the stall arrived"


async def test_chat_model_direct_use_matches_plain(make_server):
    results = {}
    for cls in (ChatOpenAI, LeanChatOpenAI):
        server = make_server([Reply(STORY, prompt_tokens=9)] * 3)
        llm = chat_model(server, cls=cls)
        streamed = [c async for c in llm.astream("hi")]
        merged = streamed[0]
        for c in streamed[1:]:
            merged = merged + c
        invoked = await llm.ainvoke("hi")
        sync_tokens = SyncTokenRecorder()
        sync_msg = llm.invoke("hi", config={"callbacks": [sync_tokens]})
        results[cls.__name__] = (
            [c.content for c in streamed],
            merged.usage_metadata,
            invoked.content,
            invoked.usage_metadata,
            sync_msg.content,
            sync_tokens.tokens,
        )
    assert results["LeanChatOpenAI"] == results["ChatOpenAI"]
    assert results["LeanChatOpenAI"][2] == STORY
