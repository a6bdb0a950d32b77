"""The scripted server's turn logic without HTTP: which answer each request gets."""

from __future__ import annotations

from typing import Any

import pytest

from streamagent.testing import Fault, RawReply, RecordedRequest, Reply, ToolCall
from streamagent.testing.script import DEFAULT_FAULT_TEXT
from streamagent.testing.turns import (
    ChatRendering,
    Refusal,
    ResponsesRendering,
    ScriptedTurns,
)


def request(body: Any = None, **extra: Any) -> RecordedRequest:
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **extra}
    return RecordedRequest("POST", "/v1/chat/completions", {}, payload if body is None else body)


def answer_next(turns: ScriptedTurns, record: RecordedRequest | None = None) -> Any:
    record = record or request()
    number, item = turns.take(record)
    return turns.answer(record, item, number)


def test_script_items_are_answered_in_order_and_requests_recorded() -> None:
    raw = RawReply(b"data: [DONE]\n\n")
    turns = ScriptedTurns(["one", Reply("two"), raw])
    assert answer_next(turns) == Reply("one")
    assert answer_next(turns) == Reply("two")
    assert answer_next(turns) is raw
    assert turns.remaining == 0
    assert len(turns.requests) == 3


def test_an_http_fault_is_the_whole_answer_a_stream_fault_rides_a_default_reply() -> None:
    http = Fault.http(429, retry_after_seconds=1)
    stall = Fault.stall(0.1, after_chunks=2)
    turns = ScriptedTurns([http, Reply("x", fault=http), stall])
    assert answer_next(turns) == http
    assert answer_next(turns) == http
    assert answer_next(turns) == Reply(DEFAULT_FAULT_TEXT, fault=stall)


def test_an_empty_script_asks_the_responder_or_refuses() -> None:
    assert answer_next(ScriptedTurns()) == Refusal(
        400, "ScriptedOpenAIServer: script exhausted (request #1)"
    )
    seen: list[RecordedRequest] = []

    def responder(record: RecordedRequest) -> str:
        seen.append(record)
        return "from the responder"

    record = request()
    assert answer_next(ScriptedTurns(responder=responder), record) == Reply("from the responder")
    assert seen == [record]


def test_a_failing_responder_is_a_500_refusal() -> None:
    def responder(record: RecordedRequest) -> str:
        raise RuntimeError("boom")

    refusal = answer_next(ScriptedTurns(responder=responder))
    assert refusal == Refusal(500, "ScriptedOpenAIServer: responder raised RuntimeError: boom")


def test_a_body_that_is_not_an_object_is_recorded_but_consumes_nothing() -> None:
    turns = ScriptedTurns(["kept"])
    number, item = turns.take(request(body=[1, 2]))
    assert (number, item, turns.remaining) == (1, None, 1)
    assert turns.requests[0].body == [1, 2]


def test_enqueue_appends_to_the_script() -> None:
    turns = ScriptedTurns()
    turns.enqueue("a", {"content": "b"})  # type: ignore[arg-type]
    assert [answer_next(turns).content for _ in range(2)] == ["a", "b"]


def test_renderings_number_completions_and_tool_calls_across_replies() -> None:
    turns = ScriptedTurns()
    calls = Reply(tool_calls=[ToolCall("a"), ToolCall("b")])
    first = turns.render(request(), calls, default_model="m")
    second = turns.render(request(), Reply(tool_calls=[ToolCall("c")]), default_model="m")
    assert isinstance(first, ChatRendering)
    first_ids = [c["id"] for c in first.body(True)["choices"][0]["message"]["tool_calls"]]
    second_ids = [c["id"] for c in second.body(True)["choices"][0]["message"]["tool_calls"]]
    assert (first_ids, second_ids) == (["call_1", "call_2"], ["call_3"])
    assert first.body(True)["id"] != second.body(True)["id"]
    assert first.body(True)["model"] == "gpt-4o-mini", "the request's model wins"


@pytest.mark.parametrize("stream", [False, True])
def test_the_responses_api_rendering_uses_response_ids(stream: bool) -> None:
    rendering = ScriptedTurns().render(
        request(stream=stream), Reply("hi"), default_model="m", responses_api=True
    )
    assert isinstance(rendering, ResponsesRendering)
    body = rendering.body(True)
    assert body["id"].startswith("resp_") and body["status"] == "completed"
    assert rendering.body(False)["status"] == "in_progress"
    events = list(rendering.events(True))
    assert events[0].data.startswith(b"event: response.created")


def test_a_chat_rendering_sends_usage_only_when_asked() -> None:
    turns = ScriptedTurns()
    plain = turns.render(request(stream=True), Reply("hi"), default_model="m")
    asked = turns.render(
        request(stream=True, stream_options={"include_usage": True}), Reply("hi"), default_model="m"
    )
    assert not any(b'"usage":{' in e.data for e in plain.events(True))
    assert any(b'"usage":{' in e.data for e in asked.events(True))
