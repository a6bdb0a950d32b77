"""One error hierarchy for streamagent.

Two branches, so callers can tell whose fault a failure is:

* :class:`UserError` — the caller made a mistake (bad configuration, invalid input).
  Retrying will not help; fix the call.
* :class:`AgentRunError` — something failed while running (the model endpoint, the network,
  a tool, Redis, a budget). Each carries ``retryable`` and ``attempts``.

Messages never contain secrets: use :func:`redact` on anything that may hold a URL or key.

Example:
    >>> from streamagent.errors import RateLimitedError, AgentRunError
    >>> err = RateLimitedError("rate limited by the model endpoint (HTTP 429)", attempts=3)
    >>> isinstance(err, AgentRunError), err.retryable, err.attempts
    (True, True, 3)
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

__all__ = [
    "AgentRunError",
    "AuthenticationError",
    "BudgetExceededError",
    "CheckpointCorruptedError",
    "ConfigurationError",
    "ContextTooLongError",
    "InvalidInputError",
    "MemoryUnavailable",
    "MissingExtraError",
    "ModelRequestError",
    "ModelUnavailableError",
    "RateLimitedError",
    "StepLimitExceededError",
    "StreamAgentError",
    "StreamBrokenError",
    "StructuredOutputError",
    "ThreadBusyError",
    "ThreadExpiredError",
    "ToolFailure",
    "TurnFencedError",
    "UserError",
    "redact",
]

_URL_PASSWORD = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:@/\s]*):(?P<pw>[^@/\s]+)@"
)
_API_KEY = re.compile(r"\b(sk-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-]{8,}")


def redact(text: str) -> str:
    """Remove passwords in URLs, OpenAI-style API keys and bearer tokens from ``text``.

    >>> redact("redis://user:hunter2@cache:6379/0 sk-abcdEFGHijklMNOP")
    'redis://user:***@cache:6379/0 sk-abcd***'
    """
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    text = _API_KEY.sub(lambda m: f"{m[1]}***", text)
    return _BEARER.sub(lambda m: f"{m[1]}***", text)


class StreamAgentError(Exception):
    """Base class of every error streamagent raises on purpose."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, attempts: int = 1) -> None:
        super().__init__(redact(message))
        self.message = redact(message)
        self.attempts = attempts
        #: True when this turn's input itself caused the error (e.g. a message that can never
        #: fit the context window): the streaming helpers then remove it from the thread.
        self.rejects_input = False
        #: True when a failed model call had already streamed tokens (consumers discard them
        #: when a ``retry`` chunk follows).
        self.partial_output = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (used by the ``error`` stream chunk)."""
        return {
            "type": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
            "attempts": self.attempts,
        }


# --------------------------------------------------------------------------- user mistakes
class UserError(StreamAgentError):
    """The caller did something wrong; retrying the same call will fail the same way."""


class ConfigurationError(UserError):
    """Invalid or missing configuration (no API key and no base URL, negative timeout, ...)."""


class MissingExtraError(ConfigurationError):
    """A feature needs an optional extra that is not installed (``.extra`` names it)."""

    def __init__(self, message: str, *, extra: str) -> None:
        super().__init__(message)
        self.extra = extra


class InvalidInputError(UserError):
    """Invalid input: empty message list, unknown role, malformed message, oversized input."""


# --------------------------------------------------------------------------- run-time failures
class AgentRunError(StreamAgentError):
    """A failure while running the agent."""


class ModelRequestError(AgentRunError):
    """The model endpoint refused the request (4xx other than the classes below).

    ``retry_after_seconds`` is the wait the server asked for (``Retry-After`` /
    ``retry-after-ms``), when it sent one. A wait longer than
    ``RetryConfig.max_delay_seconds`` is not slept through: the error is raised at once, still
    ``retryable``, so the application can schedule the retry itself.
    """

    def __init__(
        self,
        message: str,
        *,
        attempts: int = 1,
        status_code: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message, attempts=attempts)
        self.status_code = status_code
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.retry_after_seconds is not None:
            out["retry_after_seconds"] = self.retry_after_seconds
        return out


class RateLimitedError(ModelRequestError):
    """HTTP 429 from the model endpoint."""

    retryable = True


class ModelUnavailableError(ModelRequestError):
    """5xx, 408, 409, timeouts and connection failures."""

    retryable = True


class AuthenticationError(ModelRequestError):
    """HTTP 401/403: the API key is missing, wrong or lacks permission."""


class ContextTooLongError(ModelRequestError):
    """The input does not fit the model's context window, even after pruning."""


class StreamBrokenError(ModelRequestError):
    """The response stream broke: malformed chunk, truncated stream, disconnect mid-stream."""

    retryable = True


class StructuredOutputError(AgentRunError):
    """The model's structured output (``response_format``) stayed invalid after one repair."""


class ToolFailure(AgentRunError):
    """A tool could not be run (the router turns most tool problems into error ToolMessages)."""


class MemoryUnavailable(AgentRunError):
    """The checkpointer's Redis could not be reached or a write failed."""

    retryable = True


class CheckpointCorruptedError(AgentRunError):
    """A piece of a stored thread is missing (evicted under ``maxmemory``, deleted by hand,
    partially lost): the thread is never read as empty or shorter. ``thread_id`` and
    ``piece`` (e.g. ``"msgs key"``, ``"message 3fa2..."``) name what was lost."""

    def __init__(self, thread_id: str, piece: str) -> None:
        super().__init__(
            f"conversation memory of thread {thread_id!r} is damaged: its {piece} is missing "
            "(evicted by Redis maxmemory, deleted, or lost); nothing was read or stored. "
            "Delete the thread to start it over"
        )
        self.thread_id = thread_id
        self.piece = piece

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "thread_id": self.thread_id, "piece": self.piece}


class ThreadExpiredError(AgentRunError):
    """A thread known to have existed is gone: ``reason`` is ``"expired"`` (its TTL ran out;
    the saver's tombstone says so) or ``"lost"`` (no tombstone, but this process saw the
    thread: Redis was flushed, restarted empty, or evicted it). Show "this conversation has
    expired"; ``delete_thread(thread_id)`` acknowledges it and lets the id start over."""

    def __init__(self, thread_id: str, reason: str) -> None:
        what = (
            "has expired (its time to live ran out)"
            if reason == "expired"
            else "is no longer in Redis (flushed, restarted without persistence, or evicted)"
        )
        super().__init__(
            f"conversation {thread_id!r} {what}; its earlier messages are gone. Start a new "
            "conversation, or delete the thread to reuse its id"
        )
        self.thread_id = thread_id
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "thread_id": self.thread_id, "reason": self.reason}


class ThreadBusyError(AgentRunError):
    """Another turn is in flight on the thread (multitask strategy ``reject``, or
    ``enqueue`` that waited its bound). Nothing of this turn was stored; retry later."""

    retryable = True

    def __init__(self, thread_id: str, *, retry_after_seconds: float | None = None) -> None:
        hint = f" (retry in about {retry_after_seconds:.1f} s)" if retry_after_seconds else ""
        super().__init__(
            f"thread {thread_id!r} already has a turn in flight; this turn was not started "
            f"and nothing was stored{hint}"
        )
        self.thread_id = thread_id
        self.retry_after_seconds = retry_after_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "thread_id": self.thread_id,
            "retry_after_seconds": self.retry_after_seconds,
        }


class TurnFencedError(AgentRunError):
    """A write of a turn that no longer holds its thread (its lock expired and a newer turn
    took the thread) was refused by the fencing token: nothing of it was stored."""

    def __init__(self, thread_id: str) -> None:
        super().__init__(
            f"a newer turn holds thread {thread_id!r}: this turn's lock expired and its late "
            "write was refused (nothing stored)"
        )
        self.thread_id = thread_id


class BudgetExceededError(AgentRunError):
    """The next model call would exceed ``max_cost_usd`` or ``max_total_tokens`` of the thread."""


class StepLimitExceededError(BudgetExceededError):
    """The run reached ``max_steps`` model calls without a final answer."""
