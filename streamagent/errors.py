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
    "ConfigurationError",
    "ContextTooLongError",
    "InvalidInputError",
    "MemoryUnavailable",
    "ModelRequestError",
    "ModelUnavailableError",
    "RateLimitedError",
    "StepLimitExceededError",
    "StreamAgentError",
    "StreamBrokenError",
    "StructuredOutputError",
    "ToolFailure",
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


class InvalidInputError(UserError):
    """Invalid input: empty message list, unknown role, malformed message, oversized input."""


# --------------------------------------------------------------------------- run-time failures
class AgentRunError(StreamAgentError):
    """A failure while running the agent."""


class ModelRequestError(AgentRunError):
    """The model endpoint refused the request (4xx other than the classes below)."""

    def __init__(self, message: str, *, attempts: int = 1, status_code: int | None = None) -> None:
        super().__init__(message, attempts=attempts)
        self.status_code = status_code


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


class BudgetExceededError(AgentRunError):
    """The next model call would exceed ``max_cost_usd`` or ``max_total_tokens`` of the thread."""


class StepLimitExceededError(BudgetExceededError):
    """The run reached ``max_steps`` model calls without a final answer."""
