"""Pure parts of the scripted server: script items, pieces, chunks, usage, error bodies."""

from __future__ import annotations

import email.utils
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamagent.errors import InvalidInputError
from streamagent.testing import Fault, RecordedRequest, Reply, ToolCall
from streamagent.testing.__main__ import FillerResponder, parse_args
from streamagent.testing.script import DEFAULT_FAULT_TEXT, parse_script, parse_script_item
from streamagent.testing.wire import (
    DONE_EVENT,
    ChunkEncoder,
    ReplyPlan,
    error_body,
    estimate_prompt_tokens,
    filler_text,
    http_fault_headers,
    split_pieces,
)


def encoder() -> ChunkEncoder:
    return ChunkEncoder(completion_id="chatcmpl-x", created=1700000000, model="gpt-4o")


def decode(event: bytes) -> dict:
    assert event.startswith(b"data: ") and event.endswith(b"\n\n")
    return json.loads(event[len(b"data: ") : -2])


# -- pieces -------------------------------------------------------------------------------


def test_pieces_are_words_with_leading_space_and_punctuation_runs():
    assert split_pieces("Hello, world!! It's 2024.") == (
        "Hello",
        ",",
        " world",
        "!!",
        " It",
        "'s",
        " 202",
        "4",
        ".",
    )


def test_whitespace_runs_keep_the_last_space_with_the_next_word():
    assert split_pieces("a   b\n\nc") == ("a", "  ", " b", "\n\n", "c")


def test_empty_text_has_no_pieces():
    assert split_pieces("") == ()


@given(st.text())
def test_pieces_concatenate_to_the_original_text(text):
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 8, 9, 100, 2000])
def test_filler_text_has_exactly_the_requested_number_of_pieces(n):
    assert len(split_pieces(filler_text(n))) == n


# -- prompt-token estimate ----------------------------------------------------------------


def test_prompt_estimate_is_three_plus_four_per_message_plus_a_quarter_of_the_characters():
    body = {
        "messages": [
            {"role": "system", "content": "x" * 10},  # 4 + 3
            {"role": "user", "content": [{"type": "text", "text": "abcd"}, {"type": "image_url"}]},
            {  # 4 + ceil((3 + 7) / 4) = 4 + 3
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "function": {"name": "add", "arguments": '{"a":1}'}}],
            },
        ]
    }
    assert estimate_prompt_tokens(body) == 3 + 7 + 5 + 7


@pytest.mark.parametrize("body", [None, {}, {"messages": "nope"}, [1, 2]])
def test_prompt_estimate_of_a_body_without_messages_is_the_priming_constant(body):
    assert estimate_prompt_tokens(body) == 3


# -- chunks -------------------------------------------------------------------------------


@pytest.mark.parametrize("piece", ["plain", ' "quoted"', "\n", "héllo ✓", "\\", "</script>"])
def test_fast_content_chunk_is_byte_identical_to_the_generic_encoding(piece):
    enc = encoder()
    assert enc.content(piece) == enc.event(enc.chunk({"content": piece}))


def test_text_reply_streams_role_then_one_chunk_per_piece_then_finish_usage_and_done():
    plan = ReplyPlan.build(
        Reply("Hi there!", prompt_tokens=50, cached_tokens=10),
        request_body={},
        first_call_number=1,
    )
    events = list(plan.events(encoder(), include_usage=True))
    assert events[-1].data == DONE_EVENT
    chunks = [decode(e.data) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {
        "role": "assistant",
        "content": "",
        "refusal": None,
    }
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:4]] == ["Hi", " there", "!"]
    assert [e.paced for e in events] == [False, True, True, True, False, False, False]
    assert chunks[4]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert chunks[5]["choices"] == []
    assert chunks[5]["usage"]["prompt_tokens"] == 50
    assert chunks[5]["usage"]["completion_tokens"] == 3
    assert chunks[5]["usage"]["total_tokens"] == 53
    assert chunks[5]["usage"]["prompt_tokens_details"]["cached_tokens"] == 10
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["id"] for c in chunks} == {"chatcmpl-x"}


def test_usage_chunk_is_left_out_without_include_usage():
    plan = ReplyPlan.build(Reply("a"), request_body={}, first_call_number=1)
    chunks = [decode(e.data) for e in list(plan.events(encoder(), include_usage=False))[:-1]]
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_incomplete_stream_has_no_finish_usage_or_done():
    plan = ReplyPlan.build(Reply("a b"), request_body={}, first_call_number=1)
    events = list(plan.events(encoder(), include_usage=True, complete=False))
    assert DONE_EVENT not in [e.data for e in events]
    chunks = [decode(e.data) for e in events]
    assert len(chunks) == 3
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)


def test_tool_calls_stream_a_header_then_argument_pieces_with_default_ids():
    reply = Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 22}), ToolCall("echo", '{"t": ')])
    plan = ReplyPlan.build(reply, request_body={}, first_call_number=5)
    chunks = [decode(e.data) for e in list(plan.events(encoder(), include_usage=True))[:-1]]
    assert chunks[0]["choices"][0]["delta"]["content"] is None
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks[1:-2]]
    headers = [d[0] for d in deltas if "id" in d[0]]
    assert headers == [
        {
            "index": 0,
            "id": "call_5",
            "type": "function",
            "function": {"name": "add", "arguments": ""},
        },
        {
            "index": 1,
            "id": "call_6",
            "type": "function",
            "function": {"name": "echo", "arguments": ""},
        },
    ]
    args: dict[int, str] = {0: "", 1: ""}
    pieces_per_call = {0: 0, 1: 0}
    for d in deltas:
        if "id" not in d[0]:
            args[d[0]["index"]] += d[0]["function"]["arguments"]
            pieces_per_call[d[0]["index"]] += 1
    assert json.loads(args[0]) == {"a": 1, "b": 22}
    assert args[1] == '{"t": ', "string arguments are sent verbatim, even broken JSON"
    assert pieces_per_call[0] > 3, "arguments arrive in several small pieces"
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens"] == sum(pieces_per_call.values())


def test_explicit_ids_usage_figures_and_finish_reason_win():
    reply = Reply(
        "x",
        tool_calls=[ToolCall("f", {}, id="mine")],
        prompt_tokens=7,
        completion_tokens=99,
        reasoning_tokens=4,
        finish_reason="length",
    )
    plan = ReplyPlan.build(reply, request_body={}, first_call_number=1)
    assert plan.call_ids == ("mine",)
    usage = plan.usage()
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        7,
        99,
        106,
    )
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 4
    assert plan.completion(encoder())["choices"][0]["finish_reason"] == "length"


def test_default_completion_tokens_count_pieces_plus_reasoning():
    plan = ReplyPlan.build(
        Reply("one two", reasoning_tokens=10), request_body={}, first_call_number=1
    )
    assert plan.completion_tokens == 12


def test_prompt_tokens_default_to_the_estimate_of_the_request():
    body = {"messages": [{"role": "user", "content": "12345678"}]}
    plan = ReplyPlan.build(Reply("x"), request_body=body, first_call_number=1)
    assert plan.prompt_tokens == estimate_prompt_tokens(body) == 9


def test_non_streamed_completion_carries_message_tool_calls_and_usage():
    reply = Reply(tool_calls=[ToolCall("add", {"a": 1}, id="c1")])
    body = ReplyPlan.build(reply, request_body={}, first_call_number=1).completion(encoder())
    assert body["object"] == "chat.completion"
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}
    ]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["completion_tokens"] == len(split_pieces('{"a":1}'))


def test_incomplete_non_streamed_completion_has_no_finish_reason_or_usage():
    body = ReplyPlan.build(Reply("x"), request_body={}, first_call_number=1).completion(
        encoder(), complete=False
    )
    assert body["choices"][0]["finish_reason"] is None
    assert "usage" not in body


# -- errors and headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (429, "rate_limit_exceeded"),
        (401, "invalid_api_key"),
        (400, "invalid_request_error"),
        (500, "server_error"),
        (503, "server_error"),
    ],
)
def test_error_body_has_openai_like_types(status, error_type):
    body = error_body(status, "msg")
    assert body["error"]["type"] == error_type
    assert body["error"]["message"] == "msg"
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_error_code_can_be_overridden():
    assert error_body(400, "m", code="context_length_exceeded")["error"]["code"] == (
        "context_length_exceeded"
    )


def test_retry_after_as_seconds_milliseconds_and_http_date():
    assert http_fault_headers(Fault.http(429, retry_after_seconds=1.5), now_epoch_seconds=0) == {
        "Retry-After": "1.5"
    }
    assert http_fault_headers(Fault.http(429, retry_after_ms=250), now_epoch_seconds=0) == {
        "retry-after-ms": "250"
    }
    dated = http_fault_headers(
        Fault.http(503, retry_after_seconds=30, retry_after_http_date=True),
        now_epoch_seconds=1_700_000_000,
    )
    parsed = email.utils.parsedate_to_datetime(dated["Retry-After"])
    assert parsed.timestamp() == 1_700_000_030
    assert http_fault_headers(Fault.http(500), now_epoch_seconds=0) == {}


# -- script items -------------------------------------------------------------------------


def test_reply_finish_reason_defaults_on_tool_calls():
    assert Reply("x").resolved_finish_reason == "stop"
    assert Reply(tool_calls=[ToolCall("f")]).resolved_finish_reason == "tool_calls"
    assert Reply(tool_calls=[ToolCall("f")], finish_reason="stop").resolved_finish_reason == "stop"


def test_tool_call_arguments_dict_is_json_and_string_is_verbatim():
    assert json.loads(ToolCall("f", {"k": [1, "ü"]}).arguments_json) == {"k": [1, "ü"]}
    assert ToolCall("f", "{broken").arguments_json == "{broken"


def test_reply_tool_calls_become_a_tuple_so_the_reply_is_immutable():
    calls = [ToolCall("f")]
    reply = Reply(tool_calls=calls)
    calls.append(ToolCall("g"))
    assert len(reply.tool_calls) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fault.http(200),
        lambda: Fault.http(429, retry_after_http_date=True),
        lambda: Fault.stall(-1),
        lambda: Fault.disconnect(after_chunks=-1),
        lambda: Reply("x", token_delay_seconds=-0.1),
    ],
)
def test_invalid_faults_and_replies_are_refused(make):
    with pytest.raises(InvalidInputError):
        make()


def test_json_script_items_parse_to_replies_and_faults():
    script = parse_script(
        orjson.loads(
            """[
              "Hello!",
              {"tool_calls": [{"name": "echo", "arguments": {"text": "hi"}, "id": "c1"}]},
              {"content": "cut", "fault": {"kind": "disconnect", "after_chunks": 3}},
              {"fault": {"kind": "http", "status": 429, "retry_after_seconds": 1}},
              {"fault": {"kind": "stall", "seconds": 0.5, "after_chunks": 2}},
              {"fault": {"kind": "malformed", "after_chunks": 1}},
              {"fault": {"kind": "no_done"}},
              {"content": "slow", "token_delay_seconds": 0.05, "prompt_tokens": 100,
               "cached_tokens": 20}
            ]"""
        )
    )
    assert script == [
        Reply("Hello!"),
        Reply(tool_calls=[ToolCall("echo", {"text": "hi"}, "c1")]),
        Reply("cut", fault=Fault.disconnect(after_chunks=3)),
        Fault.http(429, retry_after_seconds=1),
        Fault.stall(0.5, after_chunks=2),
        Fault.malformed(after_chunks=1),
        Fault.no_done(),
        Reply("slow", token_delay_seconds=0.05, prompt_tokens=100, cached_tokens=20),
    ]


@pytest.mark.parametrize(
    "item",
    [
        42,
        {"fault": {"kind": "explode"}},
        {"fault": {"kind": "http"}},
        {"fault": "http"},
        {"content": "x", "unknown_option": 1},
        {"tool_calls": [{"arguments": {}}]},
    ],
)
def test_invalid_json_script_items_are_refused_with_a_clear_error(item):
    with pytest.raises(InvalidInputError, match="invalid"):
        parse_script_item(item)


def test_a_script_must_be_a_list():
    with pytest.raises(InvalidInputError, match="list"):
        parse_script({"content": "x"})


def test_bare_stream_fault_text_is_long_enough_to_break_mid_stream():
    assert len(split_pieces(DEFAULT_FAULT_TEXT)) >= 10


def test_recorded_request_exposes_messages_stream_flag_and_tools():
    request = RecordedRequest(
        method="POST",
        path="/v1/chat/completions",
        headers={},
        body={
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "tools": [{"type": "function"}],
            "stream_options": {"include_usage": True},
        },
    )
    assert request.messages == [{"role": "user", "content": "hi"}]
    assert request.stream and request.include_usage
    assert request.tools == [{"type": "function"}]
    empty = RecordedRequest(method="POST", path="/", headers={}, body=None)
    assert (empty.messages, empty.stream, empty.tools, empty.include_usage) == (
        [],
        False,
        [],
        False,
    )


# -- stand-alone mode options -------------------------------------------------------------


def _request(*roles: str) -> RecordedRequest:
    return RecordedRequest(
        method="POST",
        path="/v1/chat/completions",
        headers={},
        body={"messages": [{"role": r, "content": "x"} for r in roles]},
    )


def test_filler_responder_replies_with_exactly_n_pieces():
    reply = FillerResponder(25)(_request("user"))
    assert len(split_pieces(reply.content)) == 25 and not reply.tool_calls


def test_tool_then_text_calls_the_tool_until_a_tool_result_arrives():
    responder = FillerResponder(5, tool_then_text=True, tool_name="lookup")
    first = responder(_request("user"))
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("lookup", {"text": "hi"})]
    second = responder(_request("user", "assistant", "tool"))
    assert not second.tool_calls and len(split_pieces(second.content)) == 5


def test_command_line_rejects_tool_then_text_without_reply_tokens(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--tool-then-text"])
    assert "--reply-tokens" in capsys.readouterr().err
