"""The model node's reply, alone: chunks in, one checked ``AIMessage`` out (no model, no I/O)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage

from streamagent.errors import StreamBrokenError
from streamagent.llm.chunk_merge import CompactChunks
from streamagent.nodes.model_reply import (
    final_message,
    invoked_reply,
    streamed_reply,
    strict_tool_calls,
    unique_ids,
)


def text(content: str, **metadata: Any) -> AIMessageChunk:
    return AIMessageChunk(content=content, response_metadata=metadata)


def call_delta(args: str, *, index: int = 0, call_id: str | None = "c1", name: str | None = "f"):
    return AIMessageChunk(
        content="",
        tool_call_chunks=[{"index": index, "id": call_id, "name": name, "args": args}],
    )


STOP = text("", finish_reason="stop")
TOOL_CALLS = text("", finish_reason="tool_calls")


def test_text_chunks_merge_into_one_reply_without_chunk_fields() -> None:
    reply = final_message([text("Hel"), text("lo"), STOP])
    assert type(reply) is AIMessage
    assert reply.content == "Hello"
    assert reply.response_metadata["finish_reason"] == "stop"
    assert "tool_call_chunks" not in type(reply).model_fields


def test_a_single_chunk_is_a_reply() -> None:
    assert final_message([text("ok", finish_reason="stop")]).content == "ok"


def test_no_chunks_at_all_is_a_broken_stream() -> None:
    with pytest.raises(StreamBrokenError, match="before sending anything"):
        final_message([])


def test_a_stream_without_finish_reason_is_broken_not_a_silent_success() -> None:
    with pytest.raises(StreamBrokenError, match="without a finish_reason"):
        final_message([text("Hel"), text("lo")])


def test_a_usage_chunk_stands_in_for_a_missing_finish_reason() -> None:
    usage = AIMessageChunk(
        content="", usage_metadata={"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    )
    reply = final_message([call_delta('{"a": 1}'), usage])
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert reply.response_metadata["finish_reason_inferred"] is True
    assert reply.tool_calls[0]["args"] == {"a": 1}


def test_a_completed_responses_api_status_is_a_finish_reason() -> None:
    reply = final_message([text("done", status="completed")])
    assert reply.response_metadata["finish_reason"] == "stop"


def test_complete_tool_call_arguments_are_parsed() -> None:
    reply = final_message([call_delta('{"path": '), call_delta('"a.txt"}', name=None), TOOL_CALLS])
    assert [(c["id"], c["name"], c["args"]) for c in reply.tool_calls] == [
        ("c1", "f", {"path": "a.txt"})
    ]
    assert reply.invalid_tool_calls == []


def test_truncated_arguments_are_an_invalid_call_not_a_shorter_one() -> None:
    reply = final_message([call_delta('{"a": 1, "b": '), TOOL_CALLS])
    assert reply.tool_calls == []  # the partial parser would have made {"a": 1} of it
    (bad,) = reply.invalid_tool_calls
    assert bad["id"] == "c1" and bad["args"] == '{"a": 1, "b": '


def test_arguments_that_are_json_but_not_an_object_are_invalid() -> None:
    reply = final_message([call_delta("[1, 2]"), TOOL_CALLS])
    assert reply.tool_calls == []
    errors = [c["error"] for c in reply.invalid_tool_calls if c["id"] == "c1"]
    # one answer per id: LangChain's own (error-less) invalid entry for the call is replaced
    assert errors == ["the arguments must be a JSON object"]


def test_a_repeated_tool_name_in_every_delta_is_the_name_once() -> None:
    reply = final_message([call_delta('{"a": '), call_delta("1}"), TOOL_CALLS])  # llama.cpp
    assert reply.tool_calls[0]["name"] == "f"


def test_two_calls_with_one_id_get_distinct_ids(caplog: pytest.LogCaptureFixture) -> None:
    chunks = [
        call_delta('{"n": 1}', index=0, call_id="dup"),
        call_delta('{"n": 2}', index=1, call_id="dup"),
    ]
    with caplog.at_level(logging.WARNING, logger="streamagent.nodes.model"):
        reply = final_message([*chunks, TOOL_CALLS])
    assert [(c["id"], c["args"]) for c in reply.tool_calls] == [
        ("dup", {"n": 1}),
        ("dup~2", {"n": 2}),
    ]
    assert "tool call id 'dup' twice" in caplog.text


def test_strict_tool_calls_keeps_calls_it_did_not_parse_once() -> None:
    merged = call_delta('{"a": 1}') + AIMessageChunk(
        content="", tool_calls=[{"name": "g", "args": {"b": 2}, "id": "given"}]
    )
    valid, invalid = strict_tool_calls(merged)
    assert [(c["id"], c["args"]) for c in valid] == [("c1", {"a": 1}), ("given", {"b": 2})]
    assert invalid == []


def test_unique_ids_renames_every_repeat_in_place() -> None:
    calls = [{"id": "x"}, {"id": "x"}, {"id": "x"}, {"id": "y"}]
    unique_ids(calls)
    assert [c["id"] for c in calls] == ["x", "x~2", "x~3", "y"]


def test_unique_ids_skips_a_suffix_already_taken() -> None:
    calls = [{"id": "x"}, {"id": "x~2"}, {"id": "x"}]
    unique_ids(calls)
    assert [c["id"] for c in calls] == ["x", "x~2", "x~3"]


def test_streamed_reply_counts_the_chunks_that_streamed() -> None:
    chunks = CompactChunks()
    for chunk in [text("a"), text("b"), text("c"), STOP]:
        chunks.append(chunk)
    reply = streamed_reply(chunks)
    assert reply.content == "abc"
    assert reply.response_metadata["streamed_chunks"] == 4


def test_an_invoked_reply_joins_protocol_text_blocks() -> None:
    message = AIMessage(
        content=[{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
        response_metadata={"finish_reason": "stop"},
    )
    assert invoked_reply(message).content == "Hello"


def test_an_invoked_reply_keeps_mixed_content_blocks() -> None:
    blocks = [{"type": "text", "text": "a"}, {"type": "reasoning", "summary": []}]
    message = AIMessage(content=blocks, response_metadata={"finish_reason": "stop"})
    assert invoked_reply(message).content == blocks


def test_an_invoked_reply_needs_a_finish_reason_and_an_ai_message() -> None:
    with pytest.raises(StreamBrokenError, match="finish_reason"):
        invoked_reply(AIMessage("cut"))
    with pytest.raises(StreamBrokenError, match="HumanMessage"):
        invoked_reply(HumanMessage("not a reply"))


def test_an_invoked_reply_is_a_fresh_message_marked_with_its_streamed_deltas() -> None:
    original = AIMessageChunk(
        content=[{"type": "text", "text": "h"}, {"type": "text", "text": "i"}],
        response_metadata={"status": "completed"},
    )
    reply = invoked_reply(original, streamed_chunks=2)
    assert type(reply) is AIMessage and reply is not original
    assert reply.content == "hi" and original.content != "hi"  # the caller's is left alone
    assert reply.response_metadata["finish_reason"] == "stop"
    assert reply.response_metadata["streamed_chunks"] == 2
    assert invoked_reply(original).response_metadata["streamed_chunks"] == 0
