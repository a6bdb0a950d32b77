"""Retry policy for model calls: classification, backoff delays, ``Retry-After``.

Pure logic (no I/O): the model node's sync and async shells use it through tenacity.

Example:
    >>> from streamagent.config import RetryConfig
    >>> from streamagent.errors import RateLimitedError
    >>> policy = RetryPolicy(RetryConfig(jitter=False, initial_delay_seconds=1, backoff_factor=2))
    >>> policy.delay_seconds(RateLimitedError("429"), attempt=3)
    4.0
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import httpx
import httpx2
import openai

from streamagent.config import RetryConfig
from streamagent.errors import (
    AgentRunError,
    AuthenticationError,
    ContextTooLongError,
    ModelRequestError,
    ModelUnavailableError,
    RateLimitedError,
    StreamAgentError,
    StreamBrokenError,
)

__all__ = ["RetryPolicy", "classify_error", "endpoint_of", "retry_after_seconds"]

logger = logging.getLogger(__name__)


# The openai SDK talks through ``httpx2``; LangChain and users may still raise ``httpx`` errors.
_BROKEN_STREAM: tuple[type[BaseException], ...] = (
    aiohttp.ClientPayloadError,  # the lean transport's async streams use aiohttp
    aiohttp.ServerDisconnectedError,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx2.RemoteProtocolError,
    httpx2.ReadError,
)
_BROKEN_MESSAGE = "the response stream broke: the connection closed before the reply was complete"
_TIMEOUT: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    httpx.TimeoutException,
    httpx2.TimeoutException,
    TimeoutError,
)
_TRANSPORT: tuple[type[BaseException], ...] = (
    httpx.TransportError,
    httpx2.TransportError,
    ConnectionError,
)


def _cause_of_type(
    exc: BaseException, types: tuple[type[BaseException], ...]
) -> BaseException | None:
    """The first exception in ``exc``'s cause/context chain that is one of ``types``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, types):
            return current
        current = current.__cause__ or current.__context__
    return None


def retry_after_seconds(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Parse ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date) into seconds.

    >>> retry_after_seconds({"retry-after-ms": "250"})
    0.25
    >>> retry_after_seconds({"retry-after": "3"})
    3.0
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    ms = lowered.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, parsed.timestamp() - current)


def _status_error(exc: openai.APIStatusError) -> StreamAgentError:
    status = exc.status_code
    body_msg = _api_message(exc)
    where = "the model endpoint"
    err: ModelRequestError
    if status == 429:
        err = RateLimitedError(
            f"rate limited by {where} (HTTP 429): {body_msg}", status_code=status
        )
    elif status in (401, 403):
        err = AuthenticationError(
            f"{where} rejected the credentials (HTTP {status}): {body_msg}. "
            "Check OPENAI_API_KEY / ModelConfig.api_key.",
            status_code=status,
        )
    elif status in (408, 409) or status >= 500:
        err = ModelUnavailableError(
            f"{where} is unavailable (HTTP {status}): {body_msg}", status_code=status
        )
    elif status == 400 and "context_length" in (_api_code(exc) or "") + body_msg:
        err = ContextTooLongError(
            f"the input is too long for the model: {body_msg}", status_code=status
        )
    else:
        err = ModelRequestError(
            f"{where} refused the request (HTTP {status}): {body_msg}", status_code=status
        )
    delay = retry_after_seconds(dict(exc.response.headers)) if exc.response is not None else None
    if delay is not None:
        err = type(err)(
            f"{err.message}; the server asks to wait {delay:g} s before a retry",
            status_code=status,
            retry_after_seconds=delay,
        )
    return err


def _api_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return exc.message


def _api_code(exc: openai.APIStatusError) -> str | None:
    code = getattr(exc, "code", None)
    return str(code) if code else None


def endpoint_of(exc: BaseException) -> str | None:
    """The URL a failed request went to, without credentials, query or fragment.

    >>> import httpx2
    >>> req = httpx2.Request("POST", "http://user:pw@127.0.0.1:9/v1/chat/completions?k=s")
    >>> endpoint_of(httpx2.ConnectError("refused", request=req))
    'http://127.0.0.1:9/v1/chat/completions'
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        try:
            request = getattr(current, "request", None)
        except RuntimeError:  # httpx: ``.request`` of an error raised without one
            request = None
        url = getattr(request, "url", None)
        if url is not None:
            parts = urllib.parse.urlsplit(str(url))
            host = parts.hostname or ""
            if ":" in host:
                host = f"[{host}]"
            netloc = host if parts.port is None else f"{host}:{parts.port}"
            return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
        current = current.__cause__ or current.__context__
    return None


def classify_error(exc: BaseException) -> StreamAgentError:  # noqa: PLR0911
    """Map an exception raised while calling the model to a streamagent error class."""
    if isinstance(exc, StreamAgentError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, _TIMEOUT):
        return ModelUnavailableError(f"the model endpoint timed out: {type(exc).__name__}")
    broken = _cause_of_type(exc, _BROKEN_STREAM)
    if (broken is not None and isinstance(exc, (openai.APIConnectionError, httpx2.HTTPError))) or (
        isinstance(exc, _BROKEN_STREAM)
    ):
        # one wording whatever the HTTP library (its own text stays in the cause chain)
        return StreamBrokenError(_BROKEN_MESSAGE)
    if isinstance(exc, (openai.APIConnectionError, *_TRANSPORT)):
        where = endpoint_of(exc)
        at = f" {where}" if where else ""
        return ModelUnavailableError(f"cannot connect to the model endpoint{at}: {exc}")
    if isinstance(exc, json.JSONDecodeError):
        return StreamBrokenError(f"the model sent a malformed stream chunk: {exc.msg}")
    if isinstance(exc, openai.APIResponseValidationError):
        return StreamBrokenError(f"the model sent an invalid response: {exc}")
    return AgentRunError(f"unexpected error calling the model: {type(exc).__name__}: {exc}")


class RetryPolicy:
    """Which errors to retry and how long to wait (full jitter, ``Retry-After`` honoured)."""

    def __init__(self, config: RetryConfig, *, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()

    @property
    def max_attempts(self) -> int:
        return self.config.max_retries + 1

    def should_retry(self, error: BaseException, *, attempt: int) -> bool:
        return attempt < self.max_attempts and self.retries(error)

    def retries(self, error: BaseException) -> bool:
        """True when ``error`` is retried here: retryable, and any wait the server asked for
        fits ``max_delay_seconds`` (a longer one fails fast; the error carries the wait)."""
        if not self.config.is_retryable(error):
            return False
        hinted = self.retry_after_hint(error)
        return hinted is None or hinted <= self.config.max_delay_seconds

    def delay_seconds(self, error: BaseException, *, attempt: int) -> float:
        """Delay before the retry that follows failed attempt ``attempt`` (1-based)."""
        cfg = self.config
        hinted = self.retry_after_hint(error)
        if hinted is not None:
            return float(min(hinted, cfg.max_delay_seconds))
        ceiling = min(
            cfg.max_delay_seconds, cfg.initial_delay_seconds * cfg.backoff_factor ** (attempt - 1)
        )
        if cfg.jitter:
            return self._rng.uniform(0.0, ceiling)
        return float(ceiling)

    @staticmethod
    def retry_after_hint(error: BaseException) -> float | None:
        """The wait the server asked for (``retry_after_seconds`` of the error), if any."""
        value = getattr(error, "retry_after_seconds", None)
        return float(value) if isinstance(value, int | float) else None

    def describe(self, error: StreamAgentError, *, attempt: int, delay: float) -> dict[str, Any]:
        return {
            "attempt": attempt,
            "max_attempts": self.max_attempts,
            "delay_seconds": round(delay, 4),
            "error": error.to_dict(),
        }
