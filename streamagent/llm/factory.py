"""Build the ChatOpenAI client the model node streams from.

With the fast path on (``ModelConfig.fast_path``, the default unless
``STREAMAGENT_FAST_PATH=0``) and every private piece it needs present in the installed
libraries (:mod:`streamagent._upstream`), the client is a
:class:`~streamagent.llm.lean.chat_model.LeanChatOpenAI` (the lean transport: a ``ChatOpenAI``
whose streamed calls skip the openai SDK's typed chunk objects, ~2x less client CPU per
chunk); otherwise, or with
``lean=False``, the stock ``ChatOpenAI``. Both send the same request and produce the same
chunks, callbacks, usage and errors.

Example:
    >>> from streamagent.config import ModelConfig
    >>> llm = create_chat_model(ModelConfig(api_key="sk-test", model="gpt-4o-mini"))
    >>> llm.max_retries, llm.stream_usage, llm.streaming, type(llm).__name__
    (0, True, True, 'LeanChatOpenAI')
    >>> type(create_chat_model(ModelConfig(api_key="sk-test"), lean=False)).__name__
    'ChatOpenAI'
    >>> type(create_chat_model(ModelConfig(api_key="sk-test", fast_path=False))).__name__
    'ChatOpenAI'
"""

from __future__ import annotations

from typing import Any

import openai
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from streamagent._upstream import fast_path_available
from streamagent.config import ModelConfig
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.loop_client import PerLoopAsyncClient

__all__ = ["create_chat_model"]

# ChatOpenAI requires *some* key; an OpenAI-compatible server reached through base_url may not.
_PLACEHOLDER_KEY = "not-needed"


def create_chat_model(config: ModelConfig, *, lean: bool | None = None) -> ChatOpenAI:
    """A streaming ``ChatOpenAI`` with usage reporting, explicit timeouts and no SDK retries.

    The model node owns retries (see :mod:`streamagent.llm.retry`), so the SDK's are off.
    ``lean`` overrides ``config.fast_path``; the lean class is used only when the fast path's
    private pieces are all present (else one warning names the missing one). No network I/O
    happens here. The async HTTP client keeps one connection pool per event loop
    (:mod:`streamagent.llm.loop_client`), so the model works from any loop.
    """
    config.require_endpoint()
    want_lean = config.fast_path if lean is None else lean
    cls = LeanChatOpenAI if want_lean and fast_path_available() else ChatOpenAI
    # the SDK's own Timeout class: httpx's in openai 2, httpx2's in openai 3
    timeout = openai.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds)
    return cls(
        model=config.model,
        api_key=SecretStr(config.api_key or _PLACEHOLDER_KEY),
        base_url=config.base_url,
        max_tokens=config.max_tokens,  # type: ignore[call-arg]
        temperature=config.temperature,
        timeout=timeout,
        # usable from any event loop (a second asyncio.run, a worker thread's loop)
        http_async_client=PerLoopAsyncClient(timeout=timeout),
        max_retries=0,
        streaming=True,
        stream_usage=True,
        **_optional(config),
    )


def _optional(config: ModelConfig) -> dict[str, Any]:
    """Options passed only when set (a default ChatOpenAI keeps its own defaults)."""
    options: dict[str, Any] = {}
    # ChatOpenAI takes the Responses API when asked to, or on its own for ``reasoning``; that
    # API refuses the penalties (even at 0), so only a non-zero one is passed there
    responses = config.use_responses_api is not False and (
        bool(config.use_responses_api) or config.reasoning is not None
    )
    for name in ("presence_penalty", "frequency_penalty"):
        value = getattr(config, name)
        if value or not responses:
            options[name] = value
    if config.use_responses_api is not None:
        options["use_responses_api"] = config.use_responses_api
    if config.reasoning is not None:
        options["reasoning"] = dict(config.reasoning)
    return options
