"""Build the ChatOpenAI client the model node streams from.

By default the client is a :class:`~streamagent.fast_openai.LeanChatOpenAI` (a ``ChatOpenAI``
whose streamed calls skip the openai SDK's typed chunk objects, ~2x less client CPU per chunk);
``lean=False`` gives the plain ``ChatOpenAI``. Both send the same request and produce the same
chunks, callbacks, usage and errors.

Example:
    >>> from streamagent.config import ModelConfig
    >>> llm = create_chat_model(ModelConfig(api_key="sk-test", model="gpt-4o-mini"))
    >>> llm.max_retries, llm.stream_usage, llm.streaming, type(llm).__name__
    (0, True, True, 'LeanChatOpenAI')
    >>> type(create_chat_model(ModelConfig(api_key="sk-test"), lean=False)).__name__
    'ChatOpenAI'
"""

from __future__ import annotations

import httpx
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from streamagent.config import ModelConfig
from streamagent.fast_openai import LeanChatOpenAI

__all__ = ["create_chat_model"]

# ChatOpenAI requires *some* key; an OpenAI-compatible server reached through base_url may not.
_PLACEHOLDER_KEY = "not-needed"


def create_chat_model(config: ModelConfig, *, lean: bool = True) -> ChatOpenAI:
    """A streaming ``ChatOpenAI`` with usage reporting, explicit timeouts and no SDK retries.

    The model node owns retries (see :mod:`streamagent.retry`), so the SDK's are off.
    ``lean=True`` (default) returns a :class:`LeanChatOpenAI`; ``lean=False`` the plain
    ``ChatOpenAI``. No network I/O happens here.
    """
    config.require_endpoint()
    cls = LeanChatOpenAI if lean else ChatOpenAI
    return cls(
        model=config.model,
        api_key=SecretStr(config.api_key or _PLACEHOLDER_KEY),
        base_url=config.base_url,
        max_tokens=config.max_tokens,  # type: ignore[call-arg]
        temperature=config.temperature,
        presence_penalty=config.presence_penalty,
        frequency_penalty=config.frequency_penalty,
        timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
        max_retries=0,
        streaming=True,
        stream_usage=True,
    )
