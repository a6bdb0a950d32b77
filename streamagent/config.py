"""Configuration dataclasses (units in the names, keyword-only, no I/O).

Example:
    >>> from streamagent.config import AgentConfig, ModelConfig, RetryConfig
    >>> cfg = AgentConfig(model=ModelConfig(model="gpt-4o-mini", api_key="sk-test"),
    ...                   retry=RetryConfig(max_retries=2))
    >>> cfg.model.resolved_context_window()
    128000
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from streamagent.errors import (
    ConfigurationError,
    ModelUnavailableError,
    RateLimitedError,
    StreamAgentError,
    StreamBrokenError,
)

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "FAST_PATH_ENV",
    "KNOWN_CONTEXT_WINDOWS",
    "AgentConfig",
    "ModelConfig",
    "ModelPrice",
    "PruningConfig",
    "RetryConfig",
    "create_openai_config",
    "fast_path_from_env",
]

logger = logging.getLogger(__name__)

#: Context windows (input + output tokens) of OpenAI models, longest prefix wins.
KNOWN_CONTEXT_WINDOWS: Mapping[str, int] = {
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-32k": 32_768,
    "gpt-4": 8_192,
    "gpt-3.5-turbo": 16_385,
    "o1-mini": 128_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "chatgpt-4o": 128_000,
}
#: Used (with one warning) for a model whose context window is unknown and not configured.
DEFAULT_CONTEXT_WINDOW = 8_192

_warned_unknown_window: set[str] = set()


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


#: Environment variable that turns streamagent's fast path off (``0``, ``false``, ``off``, ``no``).
FAST_PATH_ENV = "STREAMAGENT_FAST_PATH"
_FALSE_WORDS = frozenset({"0", "false", "off", "no"})


def fast_path_from_env() -> bool:
    """``False`` when :data:`FAST_PATH_ENV` says off, else ``True`` (read at each call)."""
    value = os.environ.get(FAST_PATH_ENV, "").strip().lower()
    return value not in _FALSE_WORDS


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """How to reach and call the chat model.

    ``api_key`` and ``base_url`` default to ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``.
    ``timeout_seconds`` is the HTTP read timeout per request; there is always one.
    ``fast_path`` (default: on unless ``STREAMAGENT_FAST_PATH=0``) uses streamagent's lean
    transport, direct text chunks and token sink where they are known to give identical
    results; off, the model is stock ``ChatOpenAI`` over the openai SDK and tokens stream
    through LangGraph's ``messages`` mode.
    ``use_responses_api`` (``None``: ChatOpenAI decides, e.g. when ``reasoning`` is set) and
    ``reasoning`` (e.g. ``{"effort": "low", "summary": "auto"}``) select OpenAI's Responses API;
    its reasoning summaries stream as ``reasoning`` chunks.
    """

    model: str = "gpt-4o"
    api_key: str | None = field(default_factory=lambda: _env("OPENAI_API_KEY"), repr=False)
    base_url: str | None = field(default_factory=lambda: _env("OPENAI_BASE_URL"))
    max_tokens: int = 4096
    temperature: float = 0.1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    context_window: int | None = None
    fast_path: bool = field(default_factory=fast_path_from_env)
    use_responses_api: bool | None = None
    reasoning: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.model or not isinstance(self.model, str):
            raise ConfigurationError("ModelConfig.model must be a non-empty model name")
        if not (self.timeout_seconds > 0 and self.connect_timeout_seconds > 0):
            raise ConfigurationError("timeouts must be positive numbers of seconds")
        if self.max_tokens <= 0:
            raise ConfigurationError("ModelConfig.max_tokens must be positive")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigurationError("ModelConfig.temperature must be between 0 and 2")
        if self.use_responses_api and (self.presence_penalty or self.frequency_penalty):
            raise ConfigurationError(
                "the Responses API has no presence_penalty / frequency_penalty: leave them at 0 "
                "or use Chat Completions (use_responses_api=False)"
            )
        if self.context_window is not None and self.context_window <= self.max_tokens:
            raise ConfigurationError(
                f"context_window ({self.context_window}) must exceed max_tokens ({self.max_tokens})"
            )

    def resolved_context_window(self) -> int:
        """The configured context window, else the known one, else a conservative default."""
        if self.context_window is not None:
            return self.context_window
        name = self.model.split("/")[-1]
        for prefix in sorted(KNOWN_CONTEXT_WINDOWS, key=len, reverse=True):
            if name.startswith(prefix):
                return KNOWN_CONTEXT_WINDOWS[prefix]
        if name not in _warned_unknown_window:
            _warned_unknown_window.add(name)
            logger.warning(
                "context window of model %r is unknown; assuming %d tokens "
                "(set ModelConfig.context_window)",
                name,
                DEFAULT_CONTEXT_WINDOW,
            )
        return max(DEFAULT_CONTEXT_WINDOW, self.max_tokens + 1024)

    def require_endpoint(self) -> None:
        """Raise a one-line :class:`ConfigurationError` when neither key nor base URL is set."""
        if not self.api_key and not self.base_url:
            raise ConfigurationError(
                "no OpenAI API key: set OPENAI_API_KEY (or pass --base-url / OPENAI_BASE_URL "
                "for an OpenAI-compatible server that needs no key)"
            )


_DEFAULT_RETRYABLE: tuple[type[StreamAgentError], ...] = (
    RateLimitedError,
    ModelUnavailableError,
    StreamBrokenError,
)


@dataclass(frozen=True, kw_only=True)
class RetryConfig:
    """Exponential backoff with full jitter for model calls (the only retry owner).

    The delay before retry ``n`` (1-based) is ``min(max_delay, initial * factor**(n-1))``,
    drawn uniformly from ``[0, that]`` when ``jitter`` is on. A ``Retry-After`` header
    replaces it; a server wait longer than ``max_delay_seconds`` is not retried at all: the
    call fails at once with a retryable error whose ``retry_after_seconds`` is that wait.
    """

    max_retries: int = 3
    initial_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    backoff_factor: float = 2.0
    jitter: bool = True
    retryable_errors: tuple[type[StreamAgentError], ...] = _DEFAULT_RETRYABLE

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigurationError("RetryConfig.max_retries must be >= 0")
        if self.initial_delay_seconds < 0 or self.max_delay_seconds < 0:
            raise ConfigurationError("retry delays must be >= 0 seconds")
        if self.backoff_factor < 1:
            raise ConfigurationError("RetryConfig.backoff_factor must be >= 1")

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, self.retryable_errors)


@dataclass(frozen=True, kw_only=True)
class PruningConfig:
    """Token-aware context trimming.

    ``policy="view"`` trims only what the model sees (the thread keeps everything);
    ``policy="state"`` also removes dropped messages from the thread (RemoveMessage),
    enforcing ``max_messages`` / ``max_tokens`` as memory limits.
    """

    policy: Literal["view", "state"] = "view"
    max_messages: int | None = None
    max_tokens: int | None = None
    max_tool_output_tokens: int = 4_000
    safety_margin_tokens: int = 64

    def __post_init__(self) -> None:
        if self.policy not in ("view", "state"):
            raise ConfigurationError("PruningConfig.policy must be 'view' or 'state'")
        if self.max_messages is not None and self.max_messages < 1:
            raise ConfigurationError("PruningConfig.max_messages must be >= 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigurationError("PruningConfig.max_tokens must be >= 1")


@dataclass(frozen=True, kw_only=True)
class ModelPrice:
    """A user price override, in USD per one million tokens."""

    input_usd_per_1m: Decimal
    output_usd_per_1m: Decimal
    cached_input_usd_per_1m: Decimal | None = None


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    """Everything the agent graph needs, bundled.

    ``max_steps`` bounds model calls per run (tool loops); LangGraph's own recursion limit is
    set from it. ``max_cost_usd`` / ``max_total_tokens`` are per-thread budgets.
    ``require_approval`` names tools (or ``tool:operation``) that need a human's OK.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    retry: RetryConfig = field(default_factory=RetryConfig)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    system_prompt: str | None = None
    tool_timeout_seconds: float = 60.0
    max_parallel_tools: int = 8
    max_steps: int = 12
    max_cost_usd: Decimal | None = None
    max_total_tokens: int | None = None
    require_approval: frozenset[str] = frozenset()
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tool_timeout_seconds <= 0:
            raise ConfigurationError("AgentConfig.tool_timeout_seconds must be positive")
        if self.max_steps < 1:
            raise ConfigurationError("AgentConfig.max_steps must be >= 1")
        if self.max_parallel_tools < 1:
            raise ConfigurationError("AgentConfig.max_parallel_tools must be >= 1")
        if not isinstance(self.require_approval, frozenset):
            object.__setattr__(self, "require_approval", frozenset(self.require_approval))

    @property
    def recursion_limit(self) -> int:
        """LangGraph recursion limit matching ``max_steps`` (prune + model + tools per step)."""
        return self.max_steps * 3 + 3

    def with_model(self, **changes: Any) -> AgentConfig:
        return replace(self, model=replace(self.model, **changes))


def create_openai_config(**kwargs: Any) -> AgentConfig:
    """Build an :class:`AgentConfig` from the TypeScript service's ``OpenAIConfig`` fields.

    Accepts camelCase or snake_case: ``apiKey``, ``baseURL``, ``model``, ``maxTokens``,
    ``temperature``, ``presencePenalty``, ``frequencyPenalty``, ``timeout`` (milliseconds, as in
    the TypeScript service) or ``timeout_seconds``, ``maxRetries``, ``retryDelay`` (ms).

    >>> cfg = create_openai_config(apiKey="sk-x", model="gpt-4o-mini", maxTokens=256, timeout=30000)
    >>> cfg.model.max_tokens, cfg.model.timeout_seconds
    (256, 30.0)
    """
    aliases = {
        "apiKey": "api_key",
        "baseURL": "base_url",
        "baseUrl": "base_url",
        "maxTokens": "max_tokens",
        "presencePenalty": "presence_penalty",
        "frequencyPenalty": "frequency_penalty",
        "contextWindow": "context_window",
        "maxRetries": "max_retries",
        "retryDelay": "retry_delay_ms",
    }
    opts = {aliases.get(k, k): v for k, v in kwargs.items()}
    model_fields = {f for f in ModelConfig.__dataclass_fields__}
    model_kwargs: dict[str, Any] = {}
    retry_kwargs: dict[str, Any] = {}
    if "timeout" in opts:
        model_kwargs["timeout_seconds"] = float(opts.pop("timeout")) / 1000.0
    if "retry_delay_ms" in opts:
        retry_kwargs["initial_delay_seconds"] = float(opts.pop("retry_delay_ms")) / 1000.0
    if "max_retries" in opts:
        retry_kwargs["max_retries"] = int(opts.pop("max_retries"))
    for key in list(opts):
        if key in model_fields:
            model_kwargs[key] = opts.pop(key)
    if opts:
        raise ConfigurationError(f"unknown OpenAI config option(s): {', '.join(sorted(opts))}")
    return AgentConfig(model=ModelConfig(**model_kwargs), retry=RetryConfig(**retry_kwargs))
