"""The direct text-delta chunks are the objects ``ChatOpenAI``'s conversion builds."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from langchain_core.load import dumpd
from langchain_core.messages import AIMessageChunk, HumanMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.lean.convert import ChunkConverter as _ChunkConverter
from streamagent.llm.lean.text_chunks import TextChunkFactory, same_model

LLM = ChatOpenAI(model="gpt-4o", api_key=SecretStr("sk-test"))
ENVELOPE = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4o",
    "system_fingerprint": "fp_1",
}


def chunk_of(delta: Any, **choice: Any) -> dict[str, Any]:
    return {**ENVELOPE, "choices": [{"index": 0, "delta": delta, **choice}]}


def chatopenai(chunk: dict[str, Any]) -> ChatGenerationChunk | None:
    return LLM._convert_chunk_to_generation_chunk(chunk, AIMessageChunk, {})


TEXT_DELTAS = [
    {"content": "tok"},
    {"content": ""},
    {"content": None},
    {},
    {"role": "assistant", "content": ""},
    {"role": "assistant", "content": "Hi", "refusal": None},
    {"content": " é ✓ 🙂\n"},
    {"content": "x", "id": "delta-7"},
    {"content": "x", "reasoning_content": "ignored by ChatOpenAI too"},
    {"content": "x", "tool_calls": []},
    {"content": "x", "tool_calls": None, "function_call": None},
]


@pytest.mark.parametrize("delta", TEXT_DELTAS)
def test_text_delta_is_identical_to_chatopenai(delta: dict[str, Any]) -> None:
    chunk = chunk_of(delta, logprobs=None, finish_reason=None)
    direct = TextChunkFactory.build(chunk)
    expected = chatopenai(chunk)
    assert direct is not None
    assert same_model(direct, expected)
    assert direct == expected
    assert direct.message.model_dump() == expected.message.model_dump()
    assert direct.model_dump(exclude_unset=True) == expected.model_dump(exclude_unset=True)
    assert dumpd(direct.message) == dumpd(expected.message)
    assert type(direct.text) is type(expected.text) and direct.text == expected.text
    assert direct.message.content_blocks == expected.message.content_blocks
    assert pickle.loads(pickle.dumps(direct)) == expected
    # merging and assignment behave the same (what astream does next)
    assert (direct + direct) == (expected + expected)
    direct.message.id = expected.message.id = "lc_run--1"
    assert same_model(direct, expected)


OTHER_CHUNKS = [
    chunk_of({"content": "x"}, finish_reason="stop"),
    chunk_of({"content": "x"}, logprobs={"content": [{"token": "x", "logprob": -0.1}]}),
    chunk_of({"role": "user", "content": "x"}),
    chunk_of({"role": "tool", "content": "x", "tool_call_id": "c"}),
    chunk_of({"content": [{"type": "text", "text": "x"}]}),
    chunk_of(
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}
    ),
    chunk_of({"function_call": {"name": "f", "arguments": "{}"}}),
    chunk_of(None),
    {**ENVELOPE, "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    {**chunk_of({"content": "x"}), "usage": {"prompt_tokens": 1, "completion_tokens": 2}},
    {**ENVELOPE, "choices": []},
    {"type": "content.delta", "delta": "x"},
    {"chunk": {"choices": [{"index": 0, "delta": {"content": "x"}}]}},
    {**ENVELOPE, "choices": ["not a dict"]},
]


@pytest.mark.parametrize("chunk", OTHER_CHUNKS)
def test_other_chunks_are_left_to_chatopenai(chunk: dict[str, Any]) -> None:
    assert TextChunkFactory.build(chunk) is None


def test_each_chunk_owns_its_containers() -> None:
    a = TextChunkFactory.build(chunk_of({"content": "a"}))
    b = TextChunkFactory.build(chunk_of({"content": "b"}))
    assert a is not None and b is not None
    a.message.additional_kwargs["k"] = 1
    a.message.response_metadata["finish_reason"] = "stop"
    a.message.tool_call_chunks.append({"name": "f", "args": "", "id": "1", "index": 0})
    a.message.model_fields_set.add("name")
    assert b.message.additional_kwargs == {}
    assert b.message.response_metadata == {"model_provider": "openai"}
    assert b.message.tool_call_chunks == []
    assert "name" not in b.message.model_fields_set
    assert copy.deepcopy(b) == b


def test_self_check_turns_the_direct_path_off_when_objects_differ() -> None:
    factory = TextChunkFactory()

    def different(chunk: dict[str, Any], cls: type, info: dict[str, Any]) -> ChatGenerationChunk:
        generation = LLM._convert_chunk_to_generation_chunk(chunk, cls, info)
        assert generation is not None
        generation.message.response_metadata["output_version"] = "v9"
        return generation

    assert factory.enabled(different) is False
    assert TextChunkFactory().enabled(LLM._convert_chunk_to_generation_chunk) is True

    def broken(chunk: dict[str, Any], cls: type, info: dict[str, Any]) -> ChatGenerationChunk:
        raise RuntimeError("a conversion that changed its signature")

    assert TextChunkFactory().enabled(broken) is False


def test_same_model_sees_differences() -> None:
    expected = chatopenai(chunk_of({"content": "x"}))
    assert expected is not None
    other = expected.model_copy(deep=True)
    assert same_model(other, expected)
    other.message.name = None  # same value, but now "set"
    assert not same_model(other, expected)
    assert not same_model(HumanMessageChunk(content="x"), AIMessageChunk(content="x"))
    assert not same_model(expected, chatopenai(chunk_of({"content": "y"})))


def test_converter_uses_the_direct_path_only_where_chatopenai_would_build_the_same() -> None:
    lean = LeanChatOpenAI(model="gpt-4o", api_key=SecretStr("sk-test"))
    assert _ChunkConverter(lean, None)._direct is True
    v1 = LeanChatOpenAI(model="gpt-4o", api_key=SecretStr("sk-test"), output_version="v1")
    assert _ChunkConverter(v1, None)._direct is False

    class Custom(LeanChatOpenAI):
        def _convert_chunk_to_generation_chunk(self, *args: Any, **kwargs: Any) -> Any:
            return super()._convert_chunk_to_generation_chunk(*args, **kwargs)

    assert _ChunkConverter(Custom(model="gpt-4o", api_key=SecretStr("sk")), None)._direct is False
    # a whole stream: role chunk, text, tool-call deltas, finish, usage — same objects
    converter = _ChunkConverter(lean, None)
    stream = [
        chunk_of({"role": "assistant", "content": ""}),
        chunk_of({"content": "Hel"}),
        chunk_of({"content": "lo"}),
        chunk_of(
            {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk_of({"content": "!"}),
        chunk_of({}, finish_reason="stop"),
        {**ENVELOPE, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}},
    ]
    plain = _ChunkConverter(ChatOpenAI(model="gpt-4o", api_key=SecretStr("sk-test")), None)
    plain._direct = False
    direct = 0
    for chunk in stream:
        direct += TextChunkFactory.build(chunk) is not None
        assert same_model(converter.convert(chunk), plain.convert(chunk))
    assert direct == 4
