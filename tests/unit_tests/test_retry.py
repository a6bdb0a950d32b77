"""Error classification and backoff maths, on real openai/httpx exception objects."""

from __future__ import annotations

import email.utils
import json
import random

import httpx
import httpx2
import openai
import pytest

from streamagent.config import RetryConfig
from streamagent.errors import (
    AgentRunError,
    AuthenticationError,
    ContextTooLongError,
    ModelRequestError,
    ModelUnavailableError,
    RateLimitedError,
    StreamBrokenError,
)
from streamagent.llm.retry import RetryPolicy, classify_error, endpoint_of, retry_after_seconds

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def status_error(
    status: int, *, headers: dict[str, str] | None = None, body: dict | None = None
) -> openai.APIStatusError:
    payload = body or {"error": {"message": f"status {status}", "type": "x", "code": None}}
    response = httpx.Response(status, headers=headers or {}, json=payload, request=REQUEST)
    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1/v1")
    return client._make_status_error_from_response(response)  # noqa: SLF001


@pytest.mark.parametrize(
    ("status", "cls", "retryable"),
    [
        (429, RateLimitedError, True),
        (500, ModelUnavailableError, True),
        (502, ModelUnavailableError, True),
        (503, ModelUnavailableError, True),
        (408, ModelUnavailableError, True),
        (409, ModelUnavailableError, True),
        (400, ModelRequestError, False),
        (401, AuthenticationError, False),
        (403, AuthenticationError, False),
        (404, ModelRequestError, False),
        (422, ModelRequestError, False),
    ],
)
def test_http_status_classification(status, cls, retryable):
    err = classify_error(status_error(status))
    assert type(err) is cls
    assert err.retryable is retryable
    assert RetryConfig().is_retryable(err) is retryable


def test_context_length_400_is_context_too_long():
    err = classify_error(
        status_error(
            400,
            body={
                "error": {
                    "message": "maximum context length is 128000 tokens",
                    "code": "context_length_exceeded",
                }
            },
        )
    )
    assert isinstance(err, ContextTooLongError) and not err.retryable


def test_connection_timeouts_and_broken_streams():
    assert isinstance(
        classify_error(openai.APITimeoutError(request=REQUEST)), ModelUnavailableError
    )
    assert isinstance(
        classify_error(openai.APIConnectionError(request=REQUEST)), ModelUnavailableError
    )
    assert isinstance(
        classify_error(httpx.RemoteProtocolError("incomplete chunked read")), StreamBrokenError
    )
    assert isinstance(
        classify_error(json.JSONDecodeError("Expecting value", "{", 1)), StreamBrokenError
    )
    assert type(classify_error(ValueError("odd"))) is AgentRunError


def test_auth_error_message_never_contains_the_key():
    err = classify_error(
        status_error(
            401,
            body={
                "error": {"message": "Incorrect API key provided: sk-abcdefghijklmnopqrstuvwxyz"}
            },
        )
    )
    assert "sk-abcdefghijklmnop" not in err.message and "OPENAI_API_KEY" in err.message


def test_retry_after_headers_parsed():
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now=now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"retry-after": "garbage"}) is None
    assert retry_after_seconds(None) is None


def test_retry_after_honoured_and_capped_by_max_delay():
    policy = RetryPolicy(RetryConfig(max_delay_seconds=5, jitter=False))
    assert (
        policy.delay_seconds(
            classify_error(status_error(429, headers={"retry-after": "3"})), attempt=1
        )
        == 3.0
    )
    assert (
        policy.delay_seconds(
            classify_error(status_error(429, headers={"retry-after": "60"})), attempt=1
        )
        == 5.0
    )
    assert (
        policy.delay_seconds(
            classify_error(status_error(503, headers={"retry-after-ms": "120"})), attempt=1
        )
        == 0.12
    )


def test_exponential_backoff_without_and_with_full_jitter():
    cfg = RetryConfig(
        initial_delay_seconds=0.5, backoff_factor=2, max_delay_seconds=3, jitter=False
    )
    policy = RetryPolicy(cfg)
    err = ModelUnavailableError("x")
    assert [policy.delay_seconds(err, attempt=n) for n in (1, 2, 3, 4, 5)] == [
        0.5,
        1.0,
        2.0,
        3.0,
        3.0,
    ]
    jittered = RetryPolicy(RetryConfig(initial_delay_seconds=1, jitter=True), rng=random.Random(7))
    samples = [jittered.delay_seconds(err, attempt=3) for _ in range(200)]
    assert all(0 <= s <= 4 for s in samples) and max(samples) > 3 and min(samples) < 1


def test_should_retry_respects_max_retries_and_class():
    policy = RetryPolicy(RetryConfig(max_retries=2))
    assert policy.should_retry(RateLimitedError("x"), attempt=1)
    assert policy.should_retry(RateLimitedError("x"), attempt=2)
    assert not policy.should_retry(RateLimitedError("x"), attempt=3)
    assert not policy.should_retry(AuthenticationError("x"), attempt=1)


def _rate_limited(wait: float | None) -> RateLimitedError:
    return RateLimitedError("429", retry_after_seconds=wait)


def test_a_server_wait_above_max_delay_is_not_retried():
    policy = RetryPolicy(RetryConfig(max_delay_seconds=30, jitter=False))
    assert policy.retries(_rate_limited(None))
    assert policy.retries(_rate_limited(30))
    assert not policy.retries(_rate_limited(30.5))
    assert _rate_limited(3600).retryable is True
    assert policy.delay_seconds(_rate_limited(12), attempt=1) == 12
    assert _rate_limited(3600).to_dict()["retry_after_seconds"] == 3600


def test_classify_keeps_an_already_classified_error_and_names_the_endpoint():
    error = ModelUnavailableError("x")
    assert classify_error(error) is error
    request = httpx2.Request("POST", "https://u:pw@api.example:8443/v1/chat/completions?key=s")
    connection = classify_error(openai.APIConnectionError(request=request))
    assert "https://api.example:8443/v1/chat/completions" in connection.message
    assert "pw" not in connection.message and "key=s" not in connection.message
    assert endpoint_of(ValueError("no request")) is None
