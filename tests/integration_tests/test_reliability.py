"""Retries, error classification and budgets, proven with faults injected over real HTTP.

Every test talks to a :class:`~streamagent.testing.ScriptedOpenAIServer` through the real
ChatOpenAI client; delays are tiny and jitter is off, so the waits the agent plans (its
"retrying in" log lines) can be asserted exactly, and the spacing of the requests the server
received proves each wait really happened (lower bounds only: a slow machine waits longer).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import RetryConfig, StreamChunk
from streamagent.testing import Fault, Reply, ToolCall
from tests._support import agents
from tests._support.streams import collect, text

ANSWER = "The complete answer, streamed after the retry."
SECRET_KEY = "sk-test-not-a-real-key"  # the key config_for() gives the model client


def fast_retry(max_retries: int = 3, **kw: Any) -> RetryConfig:
    """Backoff 0.05 s, 0.1 s, 0.2 s... (jitter off so the spacing is predictable)."""
    opts: dict[str, Any] = {
        "max_retries": max_retries,
        "initial_delay_seconds": 0.05,
        "backoff_factor": 2.0,
        "max_delay_seconds": 1.0,
        "jitter": False,
    }
    opts.update(kw)
    return RetryConfig(**opts)


def text_after_last_retry(chunks: list[StreamChunk]) -> str:
    last = max((i for i, c in enumerate(chunks) if c.type == "retry"), default=-1)
    return text(chunks[last + 1 :])


def gaps(server: Any) -> list[float]:
    times = [r.received_at for r in server.requests]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def planned_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits the model node announced before each retry ("... retrying in 0.05s")."""
    found = (re.search(r"retrying in ([0-9.]+)s", r.getMessage()) for r in caplog.records)
    return [float(m.group(1)) for m in found if m]


async def final_ai(agent: Any, thread_id: str) -> AIMessage:
    state = await agent.aget_state({"configurable": {"thread_id": thread_id}})
    last = state.values["messages"][-1]
    assert isinstance(last, AIMessage)
    return last


def agent_for(server: Any, **overrides: Any) -> Any:
    overrides.setdefault("retry", fast_retry())
    return agents.agent_for(server, **overrides)


# --------------------------------------------------------------------------- retryable classes
RETRYABLE = [
    pytest.param(Fault.http(429), "RateLimitedError", id="429"),
    pytest.param(Fault.http(408), "ModelUnavailableError", id="408"),
    pytest.param(Fault.http(409), "ModelUnavailableError", id="409"),
    pytest.param(Fault.http(500), "ModelUnavailableError", id="500"),
    pytest.param(Fault.http(502), "ModelUnavailableError", id="502"),
    pytest.param(Fault.http(503), "ModelUnavailableError", id="503"),
    pytest.param(Fault.disconnect(after_chunks=0), "StreamBrokenError", id="disconnect-at-start"),
    pytest.param(
        Fault.disconnect(after_chunks=1), "StreamBrokenError", id="disconnect-before-first-token"
    ),
]


@pytest.mark.parametrize(("fault", "reason"), RETRYABLE)
async def test_retryable_fault_is_retried_silently_with_the_configured_backoff(
    make_server, caplog, fault, reason
):
    server = make_server([fault, fault, ANSWER])
    agent = agent_for(server)
    chunks = await collect(agent, "hi")
    assert chunks[-1].type == "done", chunks[-1]
    assert text(chunks) == ANSWER
    assert not any(c.type == "retry" for c in chunks), "no token was shown: the retry is silent"
    assert len(server.requests) == 3
    # delays 0.05 s then 0.1 s (initial 0.05, factor 2), and each was waited
    assert planned_delays(caplog) == pytest.approx([0.05, 0.1])
    first, second = gaps(server)
    assert first >= 0.045 and second >= 0.095, (first, second)
    assert (await final_ai(agent, "t")).response_metadata["attempts"] == 3


async def test_timeout_from_a_stalled_response_is_retried_after_the_read_timeout(
    make_server, caplog
):
    server = make_server([Fault.stall(3.0), ANSWER])
    agent = agent_for(server, timeout_seconds=0.3)
    chunks = await collect(agent, "hi")
    assert chunks[-1].type == "done", chunks[-1]
    assert text(chunks) == ANSWER
    assert len(server.requests) == 2
    # the read timeout (0.3 s) fired (without it the stalled reply would have been the answer
    # after 3 s, in one request), then the first backoff delay (0.05 s) was waited
    assert planned_delays(caplog) == pytest.approx([0.05])
    (gap,) = gaps(server)
    assert gap >= 0.33, gap


async def test_backoff_is_capped_by_max_delay(make_server, caplog):
    server = make_server([Fault.http(503)] * 3 + [ANSWER])
    agent = agent_for(
        server,
        retry=fast_retry(initial_delay_seconds=0.1, backoff_factor=10, max_delay_seconds=0.15),
    )
    chunks = await collect(agent, "hi")
    assert chunks[-1].type == "done"
    # 0.1 s, then 1.0 s and 10 s capped to 0.15 s
    assert planned_delays(caplog) == pytest.approx([0.1, 0.15, 0.15])
    first, second, third = gaps(server)
    assert first >= 0.095 and second >= 0.145 and third >= 0.145, (first, second, third)


# --------------------------------------------------------------------------- Retry-After
CAP = 0.5


@pytest.mark.parametrize(
    ("fault", "wait"),
    [
        pytest.param(Fault.http(429, retry_after_seconds=0.4), 0.4, id="seconds"),
        pytest.param(Fault.http(429, retry_after_ms=300), 0.3, id="retry-after-ms"),
        pytest.param(Fault.http(503, retry_after_seconds=0.4), 0.4, id="on-503"),
    ],
)
async def test_retry_after_within_max_delay_is_honoured(make_server, caplog, fault, wait):
    # a wait above max_delay_seconds fails fast instead: tests/integration_tests/test_hostile.py
    server = make_server([fault, ANSWER])
    # the computed backoff would be 0.01 s: any longer wait comes from the header
    agent = agent_for(server, retry=fast_retry(initial_delay_seconds=0.01, max_delay_seconds=CAP))
    chunks = await collect(agent, "hi")
    assert chunks[-1].type == "done", chunks[-1]
    assert planned_delays(caplog) == pytest.approx([wait])
    (gap,) = gaps(server)
    assert gap >= wait - 0.01, gap


async def test_retry_after_http_date_is_honoured(make_server, caplog):
    server = make_server(
        [Fault.http(429, retry_after_seconds=3, retry_after_http_date=True), ANSWER]
    )
    agent = agent_for(server, retry=fast_retry(initial_delay_seconds=0.01, max_delay_seconds=5))
    chunks = await collect(agent, "hi")
    assert chunks[-1].type == "done", chunks[-1]
    # an HTTP date has whole-second resolution: "now + 3 s" truncated is 2 to 3 s ahead when
    # the server sends it (a little less when the client reads it), never more than 3 s; the
    # computed backoff alone would have been 0.01 s
    (planned,) = planned_delays(caplog)
    assert 1.0 <= planned <= 3.0, planned
    (gap,) = gaps(server)
    assert gap >= planned - 0.01, (gap, planned)


# --------------------------------------------------------------------------- non-retryable
@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "ModelRequestError"),
        (401, "AuthenticationError"),
        (403, "AuthenticationError"),
        (404, "ModelRequestError"),
        (422, "ModelRequestError"),
    ],
)
async def test_non_retryable_status_is_surfaced_at_once(make_server, status, error_type):
    server = make_server([Fault.http(status), ANSWER])
    agent = agent_for(server)
    chunks = await collect(agent, "hi")
    assert [c.type for c in chunks] == ["error"]
    error = chunks[0].error
    assert error["type"] == error_type
    assert error["retryable"] is False and error["attempts"] == 1
    assert f"HTTP {status}" in error["message"]
    assert len(server.requests) == 1


async def test_context_length_error_is_classified_and_not_retried(make_server):
    server = make_server(
        [
            Fault.http(
                400,
                code="context_length_exceeded",
                message="maximum context length is 128000 tokens",
            )
        ]
    )
    chunks = await collect(agent_for(server), "hi")
    assert chunks[-1].error["type"] == "ContextTooLongError"
    assert len(server.requests) == 1


async def test_error_messages_never_contain_the_api_key(make_server):
    leaky = f"Incorrect API key provided: {SECRET_KEY}. Bearer {SECRET_KEY}"
    server = make_server([Fault.http(401, message=leaky)])
    chunks = await collect(agent_for(server), "hi")
    error = chunks[-1].error
    assert error["type"] == "AuthenticationError"
    assert "Incorrect API key" in error["message"]
    assert SECRET_KEY not in repr(chunks)
    assert "not-a-real-key" not in error["message"]


# --------------------------------------------------------------------------- broken streams
async def test_break_after_first_token_announces_retry_and_stores_only_the_retried_text(
    make_server,
):
    partial = Reply(
        "Partial words that will be cut off midway", fault=Fault.disconnect(after_chunks=4)
    )
    server = make_server([partial, ANSWER])
    agent = agent_for(server)
    chunks = await collect(agent, "hi", thread_id="mid")
    kinds = [c.type for c in chunks]
    assert kinds.index("content") < kinds.index("retry") < len(kinds) - 1
    before_retry = text(chunks[: kinds.index("retry")])
    assert before_retry and "Partial words".startswith(before_retry[:5])
    retry = next(c.retry for c in chunks if c.type == "retry")
    assert retry["discard_partial_output"] is True
    assert retry["attempt"] == 1 and retry["error"]["retryable"] is True
    assert retry["delay_seconds"] == pytest.approx(0.05)
    assert text_after_last_retry(chunks) == ANSWER
    assert chunks[-1].type == "done"
    stored = await final_ai(agent, "mid")
    assert stored.content == ANSWER, "the stored message holds only the retried text"
    assert len(server.requests) == 2


@pytest.mark.parametrize("after_chunks", [0, 4])
async def test_disconnect_is_classified_as_a_broken_stream(make_server, after_chunks):
    # the transport error sits two levels down (ChatOpenAI's OpenAIConnectionError wraps
    # openai.APIConnectionError, which wraps it) and, with openai>=3, comes from httpx2:
    # "peer closed connection without sending complete message body" must become
    # StreamBrokenError, not ModelUnavailableError("cannot connect to the model endpoint")
    cut = Reply(
        "Partial words that will be cut off", fault=Fault.disconnect(after_chunks=after_chunks)
    )
    server = make_server([cut, cut])
    agent = agent_for(server, retry=fast_retry(max_retries=1))
    chunks = await collect(agent, "hi")
    error = chunks[-1].error
    assert chunks[-1].type == "error"
    assert error["type"] == "StreamBrokenError", error
    assert "cannot connect" not in error["message"]


async def test_break_after_tool_call_deltas_retries_and_runs_the_tool_once(make_server):
    calls: list[int] = []

    @tool
    def count(n: int) -> int:
        """Count a call."""
        calls.append(n)
        return n

    broken = Reply(
        tool_calls=[ToolCall("count", {"n": 7}, id="c1")], fault=Fault.disconnect(after_chunks=3)
    )
    server = make_server(
        [broken, Reply(tool_calls=[ToolCall("count", {"n": 7}, id="c1")]), "seven"]
    )
    agent = agent_for(server, tools=[count])
    chunks = await collect(agent, "count", thread_id="tc")
    assert any(c.type == "retry" for c in chunks)
    assert [c.tool_call["id"] for c in chunks if c.type == "tool_call"] == ["c1"]
    assert calls == [7]
    assert text(chunks) == "seven" and chunks[-1].type == "done"
    state = await agent.aget_state({"configurable": {"thread_id": "tc"}})
    assert [type(m) for m in state.values["messages"]] == [
        HumanMessage,
        AIMessage,
        ToolMessage,
        AIMessage,
    ]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.malformed(after_chunks=3), id="malformed-chunk"),
        pytest.param(Fault.no_done(), id="truncated-no-done"),
        pytest.param(Fault.disconnect(after_chunks=3), id="disconnect-mid-stream"),
    ],
)
async def test_broken_stream_is_retried_then_succeeds(make_server, fault):
    server = make_server([fault, ANSWER])
    agent = agent_for(server)
    chunks = await collect(agent, "hi", thread_id="b")
    assert chunks[-1].type == "done", chunks[-1]
    assert text_after_last_retry(chunks) == ANSWER
    assert (await final_ai(agent, "b")).content == ANSWER
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.malformed(after_chunks=3), id="malformed-chunk"),
        pytest.param(Fault.no_done(), id="truncated-no-done"),
    ],
)
async def test_broken_stream_with_retries_exhausted_is_an_error_never_a_silent_success(
    make_server, fault
):
    server = make_server([fault, fault, fault, "next turn works"])
    agent = agent_for(server, retry=fast_retry(max_retries=2))
    chunks = await collect(agent, "hi", thread_id="x")
    assert chunks[-1].type == "error"
    assert not any(c.type == "done" for c in chunks)
    error = chunks[-1].error
    assert error["type"] == "StreamBrokenError"
    assert error["retryable"] is True and error["attempts"] == 3
    assert len(server.requests) == 3
    state = await agent.aget_state({"configurable": {"thread_id": "x"}})
    assert not any(isinstance(m, AIMessage) for m in state.values["messages"]), (
        "no partial answer may be stored as if it had succeeded"
    )
    again = await collect(agent, "try again", thread_id="x")
    assert text(again) == "next turn works" and again[-1].type == "done"


async def test_exhausted_rate_limit_reports_attempts_and_the_thread_continues(make_server):
    server = make_server([Fault.http(429)] * 4 + ["back again"])
    agent = agent_for(server)
    chunks = await collect(agent, "first", thread_id="rl")
    error = chunks[-1].error
    assert chunks[-1].type == "error"
    assert error == {
        "type": "RateLimitedError",
        "message": error["message"],
        "retryable": True,
        "attempts": 4,
    }
    assert "HTTP 429" in error["message"]
    assert len(server.requests) == 4
    again = await collect(agent, "second", thread_id="rl")
    assert text(again) == "back again"
    sent = server.requests[-1].messages
    assert [m["content"] for m in sent if m["role"] == "user"] == ["first", "second"]
    state = await agent.aget_state({"configurable": {"thread_id": "rl"}})
    assert [type(m) for m in state.values["messages"]] == [HumanMessage, HumanMessage, AIMessage]


# --------------------------------------------------------------------------- budgets
async def test_token_budget_stops_before_the_call_that_would_exceed_it(make_server):
    server = make_server([Reply("first", prompt_tokens=990, completion_tokens=20), "second"])
    saver = InMemorySaver()
    agent = agent_for(server, saver=saver, max_total_tokens=1000)
    assert (await collect(agent, "one", thread_id="tok"))[-1].type == "done"
    chunks = await collect(agent, "two", thread_id="tok")
    assert [c.type for c in chunks] == ["error"]
    error = chunks[0].error
    assert error["type"] == "BudgetExceededError" and error["retryable"] is False
    assert "max_total_tokens=1000" in error["message"] and "1010" in error["message"]
    assert len(server.requests) == 1, "the refused call never reached the model"
    # the thread is intact: a bigger budget continues it with its whole history
    bigger = agent_for(server, saver=saver, max_total_tokens=100_000)
    again = await collect(bigger, "three", thread_id="tok")
    assert text(again) == "second"
    users = [m["content"] for m in server.requests[-1].messages if m["role"] == "user"]
    assert users[0] == "one" and users[-1] == "three"


async def test_cost_budget_stops_before_the_call_that_would_exceed_it(make_server):
    # gpt-4o: 4000 input tokens cost $0.01, already the whole budget
    server = make_server([Reply("pricey", prompt_tokens=4000, completion_tokens=10), "cheap"])
    saver = InMemorySaver()
    agent = agent_for(server, saver=saver, max_cost_usd=Decimal("0.01"))
    first = await collect(agent, "one", thread_id="usd")
    assert first[-1].type == "done" and first[-1].cost_usd == Decimal("0.0101")
    chunks = await collect(agent, "two", thread_id="usd")
    assert [c.type for c in chunks] == ["error"]
    assert chunks[0].error["type"] == "BudgetExceededError"
    assert "max_cost_usd=$0.01" in chunks[0].error["message"]
    assert len(server.requests) == 1
    more = agent_for(server, saver=saver, max_cost_usd=Decimal("1"))
    assert text(await collect(more, "three", thread_id="usd")) == "cheap"


async def test_step_limit_stops_a_tool_loop_and_the_next_message_starts_fresh(make_server):
    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    loop = Reply(tool_calls=[ToolCall("ping", {})])
    server = make_server([loop, loop, loop, "finally an answer"])
    agent = agent_for(server, tools=[ping], max_steps=3)
    chunks = await collect(agent, "loop", thread_id="steps")
    assert chunks[-1].type == "error"
    assert chunks[-1].error["type"] == "StepLimitExceededError"
    assert "max_steps=3" in chunks[-1].error["message"]
    assert len(server.requests) == 3
    again = await collect(agent, "stop looping", thread_id="steps")
    assert text(again) == "finally an answer" and again[-1].type == "done"
    state = await agent.aget_state({"configurable": {"thread_id": "steps"}})
    messages = state.values["messages"]
    tool_ids = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    call_ids = {c["id"] for m in messages if isinstance(m, AIMessage) for c in m.tool_calls}
    assert call_ids <= tool_ids, "every tool call of the stopped loop still has its answer"
