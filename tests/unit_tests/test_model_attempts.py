"""The model node's retry loop, alone: plain functions that fail or answer stand in for the
model call (no model, no server, no sleeping: the retry delays are zero)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk

from streamagent.config import RetryConfig
from streamagent.errors import (
    AgentRunError,
    ModelRequestError,
    RateLimitedError,
    StreamAgentError,
    StreamBrokenError,
)
from streamagent.llm.retry import RetryPolicy
from streamagent.nodes.model_attempts import (
    Attempt,
    ModelAttempts,
    TokenWatch,
    attempt_error,
    chained,
    takes_timing,
)
from streamagent.streaming.protocol import EVENT_KEY, RETRY_EVENT
from streamagent.streaming.sink import TokenSink


class Heard:
    """An observer that keeps what the loop told it (``on_error`` takes the call's timing)."""

    def __init__(self) -> None:
        self.retries: list[tuple[str, StreamAgentError]] = []
        self.errors: list[tuple[StreamAgentError, dict[str, Any]]] = []

    def on_retry(self, *, model: str, error: StreamAgentError) -> None:
        self.retries.append((model, error))

    def on_error(self, error: StreamAgentError, **timing: Any) -> None:
        self.errors.append((error, timing))

    def on_model_call(self, **kwargs: Any) -> None: ...

    def on_tool_call(self, **kwargs: Any) -> None: ...

    def on_prune(self, **kwargs: Any) -> None: ...


class HeardErrorOnly(Heard):
    """An older observer whose ``on_error`` takes the error alone."""

    def on_error(self, error: StreamAgentError) -> None:  # type: ignore[override]
        self.errors.append((error, {}))


def loop(observer: Heard | None = None, *, retries: int = 3, **retry: Any) -> ModelAttempts:
    policy = RetryPolicy(RetryConfig(max_retries=retries, initial_delay_seconds=0, **retry))
    return ModelAttempts(policy, name="agent", model_name="default-model", observer=observer)


class Script:
    """A model call that raises the scripted errors in turn, then answers; records attempts."""

    def __init__(self, *errors: BaseException, emit_before_failing: bool = False) -> None:
        self.errors = list(errors)
        self.emit = emit_before_failing
        self.seen: list[tuple[int, bool]] = []  # (attempt number, emitted when called)

    def __call__(self, attempt: Attempt) -> str:
        self.seen.append((attempt.number, attempt.emitted))
        if self.errors:
            if self.emit:
                attempt.note_chunk(AIMessageChunk(content="partial"))
            raise self.errors.pop(0)
        return f"answer {attempt.number}"

    async def acall(self, attempt: Attempt) -> str:
        return self(attempt)


# ---------------------------------------------------------------------- the loop
def test_a_first_answer_is_returned_after_one_attempt() -> None:
    heard = Heard()
    attempt = Attempt(model="m")
    assert loop(heard).run(Script(), attempt) == "answer 1"
    assert attempt.number == 1
    assert heard.retries == [] and heard.errors == []


def test_retryable_failures_are_retried_until_an_answer() -> None:
    heard = Heard()
    script = Script(StreamBrokenError("cut"), RateLimitedError("slow down", status_code=429))
    attempt = Attempt(model="m")
    assert loop(heard).run(script, attempt) == "answer 3"
    assert [n for n, _ in script.seen] == [1, 2, 3]
    assert [(model, type(error)) for model, error in heard.retries] == [
        ("m", StreamBrokenError),
        ("m", RateLimitedError),
    ]
    assert heard.errors == []


def test_an_attempt_without_a_model_is_reported_under_the_node_model() -> None:
    heard = Heard()
    loop(heard).run(Script(StreamBrokenError("cut")), Attempt())
    assert heard.retries[0][0] == "default-model"


def test_an_empty_event_stream_is_a_broken_stream_and_retried() -> None:
    script = Script(ValueError("No generation chunks were returned"))
    assert loop().run(script, Attempt()) == "answer 2"


def test_a_non_retryable_failure_ends_the_call_at_once_classified_with_its_cause() -> None:
    heard = Heard()
    boom = KeyError("boom")
    script = Script(boom)
    attempt = Attempt(model="m", started=time.perf_counter() - 5)
    with pytest.raises(AgentRunError, match="unexpected error calling the model") as info:
        loop(heard).run(script, attempt)
    error = info.value
    assert len(script.seen) == 1
    assert error.attempts == 1 and error.partial_output is False
    assert error.__cause__ is boom
    ((reported, timing),) = heard.errors
    assert reported is error
    assert timing["model"] == "m" and timing["latency_seconds"] >= 5


def test_an_observer_whose_on_error_takes_no_timing_gets_the_error_alone() -> None:
    heard = HeardErrorOnly()
    with pytest.raises(AgentRunError):
        loop(heard).run(Script(KeyError("boom")), Attempt())
    assert heard.errors[0][1] == {}


async def test_exhausted_retries_raise_the_last_error_with_attempts_and_partial_output() -> None:
    heard = Heard()
    errors = [StreamBrokenError(f"cut {n}") for n in range(1, 4)]
    script = Script(*errors, emit_before_failing=True)
    with pytest.raises(StreamBrokenError) as info:
        await loop(heard, retries=2).arun(script.acall, Attempt(model="m", sink=TokenSink()))
    assert info.value is errors[-1]
    assert info.value.attempts == 3 and info.value.partial_output is True
    assert info.value.__cause__ is None  # an error raised as is is not its own cause
    assert len(heard.retries) == 2 and len(heard.errors) == 1


def test_max_attempts_overrides_the_policy() -> None:
    script = Script(*[StreamBrokenError("cut") for _ in range(5)])
    with pytest.raises(StreamBrokenError) as info:
        loop(retries=9).run(script, Attempt(), max_attempts=2)
    assert info.value.attempts == 2 and len(script.seen) == 2


def test_a_server_wait_longer_than_max_delay_fails_fast(caplog: pytest.LogCaptureFixture) -> None:
    wait = RateLimitedError("slow down", status_code=429, retry_after_seconds=60)
    script = Script(wait)
    with (
        caplog.at_level(logging.WARNING, logger="streamagent.nodes.model"),
        pytest.raises(RateLimitedError) as info,
    ):
        loop(max_delay_seconds=1).run(script, Attempt())
    assert len(script.seen) == 1
    assert info.value.retry_after_seconds == 60
    assert "asks to wait 60s" in caplog.text


def test_a_failure_that_is_not_an_exception_passes_through_unclassified() -> None:
    class Stop(BaseException):
        pass

    heard = Heard()
    with pytest.raises(Stop):
        loop(heard).run(Script(Stop()), Attempt())
    assert heard.errors == []


# ---------------------------------------------------------------------- retry events
async def test_a_retry_after_streamed_tokens_is_announced_on_the_sink_in_order() -> None:
    sink = TokenSink()
    sink.put((("agent",), "messages", "the partial token"))
    attempt = Attempt(model="m", sink=sink, namespace=("agent",))
    script = Script(StreamBrokenError("cut"), emit_before_failing=True)
    assert await loop().arun(script.acall, attempt) == "answer 2"
    assert script.seen == [(1, False), (2, False)]  # the second attempt starts afresh
    assert attempt.first_token_at is None  # the answer streamed nothing in this script
    parts = await sink.take()
    assert parts is not None
    assert [mode for _, mode, _ in parts] == ["messages", "custom"]
    namespace, _, event = parts[1]
    assert namespace == ("agent",)
    assert event[EVENT_KEY] == RETRY_EVENT
    assert event["agent"] == "agent"
    assert event["discard_partial_output"] is True
    assert event["attempt"] == 1 and event["max_attempts"] == 4
    assert event["error"]["type"] == "StreamBrokenError"


def test_without_a_sink_the_retry_goes_out_through_langgraphs_custom_stream() -> None:
    from langgraph.graph import END, START, StateGraph
    from typing_extensions import TypedDict

    class State(TypedDict, total=False):
        answer: str

    def node(state: State) -> State:
        script = Script(StreamBrokenError("cut"), emit_before_failing=True)
        return {"answer": loop().run(script, Attempt(model="m"))}

    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("model", node)
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    parts = list(builder.compile().stream({}, stream_mode=["custom", "values"]))
    events = [data for mode, data in parts if mode == "custom"]
    assert [(e[EVENT_KEY], e["discard_partial_output"]) for e in events] == [(RETRY_EVENT, True)]
    assert parts[-1] == ("values", {"answer": "answer 2"})


async def test_a_retry_before_any_token_is_silent() -> None:
    sink = TokenSink()
    attempt = Attempt(sink=sink)
    assert await loop().arun(Script(StreamBrokenError("cut")).acall, attempt) == "answer 2"
    sink.close()
    assert await sink.take() is None


async def test_the_async_loop_classifies_and_reports_as_the_sync_one() -> None:
    heard = Heard()
    with pytest.raises(AgentRunError) as info:
        await loop(heard).arun(Script(KeyError("boom")).acall, Attempt(model="m"))
    assert isinstance(info.value.__cause__, KeyError)
    assert heard.errors[0][0] is info.value


# ---------------------------------------------------------------------- the parts
def test_tenacity_options_stop_after_the_attempts_and_reraise() -> None:
    options = loop(retries=1).retrying_kwargs(Attempt())
    assert options["reraise"] is True
    assert options["stop"].max_attempt_number == 2
    assert loop().retrying_kwargs(Attempt(), 7)["stop"].max_attempt_number == 7


def test_the_first_chunk_with_content_marks_the_attempt_once() -> None:
    attempt = Attempt()
    attempt.note_chunk(AIMessageChunk(content=""))  # role-only first delta
    assert not attempt.emitted and attempt.first_token_at is None
    attempt.note_chunk(AIMessageChunk(content="Hi"))
    first = attempt.first_token_at
    assert attempt.emitted and first is not None and first >= attempt.started
    attempt.note_chunk(AIMessageChunk(content=" there"))
    assert attempt.first_token_at == first


def test_a_tool_call_delta_is_a_token() -> None:
    attempt = Attempt()
    delta = {"index": 0, "id": "c1", "name": "f", "args": ""}
    attempt.note_chunk(AIMessageChunk(content="", tool_call_chunks=[delta]))
    assert attempt.emitted


def test_the_token_watch_counts_content_deltas_and_marks_the_first() -> None:
    attempt = Attempt()
    watch = TokenWatch(attempt)
    watch.on_stream_event({"event": "message-start"})
    assert not attempt.emitted
    watch.on_stream_event({"event": "content-block-delta", "delta": "a"})
    first = attempt.first_token_at
    watch.on_stream_event({"event": "content-block-delta", "delta": "b"})
    watch.on_stream_event("not a mapping")
    assert watch.deltas == 2
    assert attempt.emitted and attempt.first_token_at == first is not None


def test_a_new_error_is_chained_to_its_cause() -> None:
    cause = OSError("reset")
    error = chained(StreamBrokenError("cut"), cause)
    assert error.__cause__ is cause and error.__suppress_context__


def test_an_error_that_already_was_one_is_not_its_own_cause() -> None:
    error = StreamBrokenError("cut")
    assert chained(error, error) is error
    assert error.__cause__ is None


def test_attempt_error_classifies_and_chains() -> None:
    cause = ValueError("No generation chunks were returned")
    error = attempt_error(cause)
    assert isinstance(error, StreamBrokenError) and error.__cause__ is cause
    refused = ModelRequestError("bad request", status_code=400)
    assert attempt_error(refused) is refused


def test_takes_timing_reads_the_observer_signature() -> None:
    def timed(error: Any, *, model: str, latency_seconds: float) -> None: ...

    def keywords(error: Any, **kwargs: Any) -> None: ...

    def plain(error: Any) -> None: ...

    assert takes_timing(timed) and takes_timing(keywords)
    assert not takes_timing(plain)
    assert not takes_timing(print)  # no signature to read
