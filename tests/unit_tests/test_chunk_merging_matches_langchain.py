"""``CompactChunks``: merging its compacted list equals merging every chunk, with fewer objects."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.outputs.chat_generation import merge_chat_generation_chunks

from streamagent.llm.chunk_merge import CompactChunks

RUN = "lc_run--1"
META = {"model_provider": "openai"}


def text(content: str, **kw: Any) -> AIMessageChunk:
    kw.setdefault("id", RUN)
    kw.setdefault("response_metadata", dict(META))
    return AIMessageChunk(content=content, **kw)


def openai_like_stream() -> list[AIMessageChunk]:
    """What ChatOpenAI.astream yields: role chunk, deltas, tool call, finish, usage, last."""
    return [
        text(""),
        *[text(f"w{i} ") for i in range(50)],
        text("", tool_call_chunks=[tool_call_chunk(name="f", args='{"a"', id="c1", index=0)]),
        text("", tool_call_chunks=[tool_call_chunk(name=None, args=": 1}", id=None, index=0)]),
        text("more"),
        text(" text"),
        text("", response_metadata={"finish_reason": "stop", "model_name": "gpt-4o", **META}),
        text(
            "",
            response_metadata={},
            usage_metadata={"input_tokens": 3, "output_tokens": 52, "total_tokens": 55},
        ),
        text("", response_metadata={}, chunk_position="last"),
    ]


def merged_messages(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    return chunks[0] if len(chunks) == 1 else add_ai_message_chunks(chunks[0], *chunks[1:])


def compact(chunks: list[Any]) -> CompactChunks:
    acc = CompactChunks()
    for chunk in chunks:
        acc.append(chunk)
    return acc


EDGE_CASES = {
    "openai stream": openai_like_stream(),
    "single chunk": [text("only")],
    "plain chunks only": [text("a"), text("b"), text("c")],
    "id changes mid-stream": [text("a"), text("b"), text("c", id="other"), text("d", id="other")],
    "provider id wins": [text("a"), text("b", id="chatcmpl-1"), text("c"), text("d")],
    "conflicting model_provider": [
        text("a"),
        text("b"),
        text("c", response_metadata={"model_provider": "x"}),
        text("d"),
        text("e"),
    ],
    "extra metadata key": [
        text("a"),
        text("b", response_metadata={"model_provider": "openai", "note": "n"}),
        text("c", response_metadata={"model_provider": "openai", "note": "n"}),
    ],
    "additional kwargs": [
        text("a"),
        text("b", additional_kwargs={"k": "x"}),
        text("c", additional_kwargs={"k": "y"}),
        text("d"),
    ],
    "list content": [
        text("a"),
        AIMessageChunk(content=[{"type": "text", "text": "b"}], id=RUN, response_metadata=META),
        text("c"),
        text(""),
        text("d"),
    ],
    "empty metadata": [text("a", response_metadata={}), text("b", response_metadata={})],
    "name is not merged": [text("a", name="n"), text("b", name="m"), text("c")],
}


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_message_merge_equals_merging_every_chunk(name: str) -> None:
    chunks = EDGE_CASES[name]
    acc = compact(chunks)
    assert acc.count == len(acc) == len(chunks)
    got = merged_messages(acc.chunks())
    assert got.model_dump() == merged_messages(chunks).model_dump()


@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_generation_merge_equals_merging_every_chunk(name: str) -> None:
    gens = [
        ChatGenerationChunk(
            message=c, generation_info={"finish_reason": "stop"} if i == 3 else None
        )
        for i, c in enumerate(EDGE_CASES[name])
    ]
    acc = compact(gens)
    got = merge_chat_generation_chunks(acc.chunks())
    want = merge_chat_generation_chunks(gens)
    assert got is not None and want is not None
    assert got.model_dump() == want.model_dump()


def test_a_long_text_reply_keeps_a_few_chunks_and_never_changes_the_streamed_ones() -> None:
    chunks = openai_like_stream()
    before = [c.model_dump() for c in chunks]
    acc = compact(chunks)
    kept = acc.chunks()
    # role chunk + one run of 50 deltas, two tool deltas, one run of 2, finish, usage, last
    assert len(kept) == 8
    assert kept[1].content == "".join(f"w{i} " for i in range(50))
    assert [c.model_dump() for c in chunks] == before


def test_chunks_can_be_taken_mid_stream_and_the_stream_continues() -> None:
    chunks = openai_like_stream()
    acc = CompactChunks()
    for i, chunk in enumerate(chunks):
        acc.append(chunk)
        partial = merged_messages(acc.chunks())
        assert partial.model_dump() == merged_messages(chunks[: i + 1]).model_dump()


def test_message_and_generation_chunks_are_never_mixed_into_runs() -> None:
    acc = CompactChunks()
    acc.append(ChatGenerationChunk(message=text("a")))
    acc.append(text("b"))  # a bare message after generations is kept, not compacted
    assert len(acc.chunks()) == 2


def test_a_very_long_run_holds_its_text_in_a_few_strings() -> None:
    words = [f"w{i} " for i in range(10_000)]
    chunks = [text(""), *[text(w) for w in words], text("", chunk_position="last")]
    acc = CompactChunks()
    for i, chunk in enumerate(chunks):
        acc.append(chunk)
        if i == 5_000:  # mid-stream: the pending run is blocks of joined pieces
            assert acc._pieces is not None and len(acc._pieces) < 5_000 // 64 + 64
            assert "".join(acc._pieces) == "".join(words[:5_000])
    kept = acc.chunks()
    assert len(kept) == 3 and kept[1].content == "".join(words)
    assert merged_messages(kept).model_dump() == merged_messages(chunks).model_dump()
