"""Real OpenAI-compatible servers' quirks, replayed byte for byte through the scripted server.

The bodies below are what llama.cpp's server (and servers like it) send: the tool name repeated
in every tool-call delta, no usage chunk, a 200 with no events, no ``finish_reason``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import StreamChunk, create_agent_graph
from streamagent.accounting.tokens import TokenCounter
from streamagent.testing import RawReply, Reply, sse
from tests._support.streams import collect
from tests.conftest import config_for


@tool
def read_file(path: str) -> str:
    """Read a file of the workspace."""
    return f"contents of {path}"


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """A chunk as llama.cpp's server writes it."""
    return {
        "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
        "created": 1764900000,
        "id": "chatcmpl-llamacpp",
        "model": "smollm2",
        "system_fingerprint": "b6000-abcdef",
        "object": "chat.completion.chunk",
    }


def _tool_delta(arguments: str) -> dict[str, Any]:
    call = {
        "index": 0,
        "id": "call_llama",
        "type": "function",
        "function": {"name": "read_file", "arguments": arguments},
    }
    return _chunk({"tool_calls": [call]})


START = _chunk({"role": "assistant", "content": None})
REPEATED_NAME = sse(
    START,
    _tool_delta('{"pa'),
    _tool_delta('th": "no'),
    _tool_delta('tes.md"}'),
    _chunk({}, "tool_calls"),
)
TEXT_NO_USAGE = sse(
    START, _chunk({"content": "It "}), _chunk({"content": "says hi."}), _chunk({}, "stop")
)
USAGE = {"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32}
NO_FINISH_WITH_USAGE = sse(
    START, _chunk({"content": "Fine."}), {**_chunk({}), "choices": [], "usage": USAGE}
)
NO_FINISH_NO_USAGE = sse(START, _chunk({"content": "Cut"}))


def _of(chunks: list[StreamChunk], kind: str) -> list[StreamChunk]:
    return [c for c in chunks if c.type == kind]


async def test_a_tool_name_repeated_in_every_delta_is_one_name(make_server: Any) -> None:
    server = make_server([RawReply(REPEATED_NAME), RawReply(TEXT_NO_USAGE)])
    agent = create_agent_graph(tools=[read_file], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "read my notes", thread_id="llama")
    assert chunks[-1].type == "done", chunks[-1]
    [call] = _of(chunks, "tool_call")
    assert call.tool_call == {"id": "call_llama", "name": "read_file", "args": {"path": "notes.md"}}
    [result] = _of(chunks, "tool_result")
    assert result.tool_result is not None
    assert result.tool_result["status"] == "success"
    assert result.tool_result["content"] == "contents of notes.md"


async def test_missing_usage_is_estimated_with_tool_schemas_and_marked(make_server: Any) -> None:
    server = make_server([RawReply(REPEATED_NAME), RawReply(TEXT_NO_USAGE)])
    agent = create_agent_graph(tools=[read_file], config=config_for(server)).compile(
        checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "read my notes", thread_id="est")
    done = chunks[-1]
    assert done.type == "done" and done.usage_estimated is True
    assert done.to_dict()["usage_estimated"] is True
    messages = (await agent.aget_state({"configurable": {"thread_id": "est"}})).values["messages"]
    assert all(m.response_metadata.get("usage_estimated") for m in messages if m.type == "ai")
    counter = TokenCounter("gpt-4o")
    first, second = messages[:1], messages[:3]
    with_tools = counter.count_messages(first, tools=[read_file]) + counter.count_messages(
        second, tools=[read_file]
    )
    assert done.usage is not None
    assert done.usage["input_tokens"] == with_tools
    assert with_tools > counter.count_messages(first) + counter.count_messages(second)
    final = messages[-1]
    assert isinstance(final, AIMessage)
    assert done.usage["output_tokens"] >= counter.count_text("It says hi.") > 0


async def test_real_usage_is_not_marked_estimated(make_server: Any) -> None:
    server = make_server(["hello"])
    agent = create_agent_graph(config=config_for(server)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    assert chunks[-1].type == "done" and chunks[-1].usage_estimated is False
    assert "usage_estimated" not in chunks[-1].to_dict()


async def test_an_empty_event_stream_is_a_retried_stream_broken_error(make_server: Any) -> None:
    server = make_server([RawReply(b""), RawReply(b"data: [DONE]\n\n"), "recovered"])
    agent = create_agent_graph(config=config_for(server)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    assert chunks[-1].type == "done", chunks[-1]
    assert "".join(c.content or "" for c in _of(chunks, "content")) == "recovered"
    assert len(server.requests) == 3


async def test_empty_event_streams_every_time_end_in_stream_broken_error(
    make_server: Any,
) -> None:
    server = make_server([RawReply(b"data: [DONE]\n\n")] * 4)
    agent = create_agent_graph(config=config_for(server)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    error = chunks[-1].error
    assert chunks[-1].type == "error" and error is not None
    assert error["type"] == "StreamBrokenError", error
    assert error["retryable"] is True and error["attempts"] == 4
    assert "empty event stream" in error["message"]


async def test_no_finish_reason_but_a_usage_chunk_is_a_finished_reply(make_server: Any) -> None:
    server = make_server([RawReply(NO_FINISH_WITH_USAGE)])
    agent = create_agent_graph(config=config_for(server)).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "hi", thread_id="nf")
    assert chunks[-1].type == "done", chunks[-1]
    assert not _of(chunks, "retry") and len(server.requests) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage["input_tokens"] == 30
    [_, reply] = (await agent.aget_state({"configurable": {"thread_id": "nf"}})).values["messages"]
    assert reply.text == "Fine."
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["finish_reason_inferred"] is True


async def test_no_finish_reason_and_no_usage_is_a_truncated_stream(make_server: Any) -> None:
    server = make_server([RawReply(NO_FINISH_NO_USAGE), Reply("whole")])
    agent = create_agent_graph(config=config_for(server)).compile()
    chunks = await collect(agent, "hi", thread_id=None)
    assert chunks[-1].type == "done", chunks[-1]
    [retry] = _of(chunks, "retry")
    assert retry.retry is not None
    assert retry.retry["error"]["type"] == "StreamBrokenError"
    assert retry.retry["discard_partial_output"] is True
