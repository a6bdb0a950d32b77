"""Merging streamed tool-call deltas from servers that repeat the tool name."""

from __future__ import annotations

from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks

from streamagent.nodes._quirks import dedupe_tool_names


def _delta(index: int, name: str | None, args: str, call_id: str | None = None) -> AIMessageChunk:
    call = {"index": index, "id": call_id, "name": name, "args": args, "type": "tool_call_chunk"}
    return AIMessageChunk(content="", tool_call_chunks=[call])  # type: ignore[list-item]


def _names(chunks: list[AIMessageChunk]) -> list[str]:
    merged = add_ai_message_chunks(chunks[0], *chunks[1:])
    return [c["name"] for c in merged.tool_calls]


def test_a_repeated_name_is_kept_once_per_call_index() -> None:
    chunks = [
        _delta(0, "read_file", '{"path":', "a"),
        _delta(1, "git_operation", '{"operation":', "b"),
        _delta(0, "read_file", ' "x"}'),
        _delta(1, "git_operation", ' "log"}'),
    ]
    assert _names(dedupe_tool_names(chunks)) == ["read_file", "git_operation"]


def test_a_name_split_across_deltas_is_joined_as_before() -> None:
    chunks = [_delta(0, "read_", "", "a"), _delta(0, "file", '{"path": "x"}')]
    assert _names(dedupe_tool_names(chunks)) == ["read_file"]


def test_chunks_without_repeats_are_returned_unchanged() -> None:
    chunks = [_delta(0, "read_file", '{"path":', "a"), _delta(0, None, ' "x"}')]
    assert dedupe_tool_names(chunks) is chunks
