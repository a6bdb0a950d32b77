"""Build the ChatOpenAI client the model node streams from.

Example:
    >>> from streamagent.config import ModelConfig
    >>> llm = create_chat_model(ModelConfig(api_key="sk-test", model="gpt-4o-mini"))
    >>> llm.max_retries, llm.stream_usage, llm.streaming
    (0, True, True)
"""

from __future__ import annotations

import httpx
from langchain_openai import ChatOpenAI
from pydantic import SecretStr

from streamagent.config import ModelConfig

__all__ = ["create_chat_model"]

# ChatOpenAI requires *some* key; an OpenAI-compatible server reached through base_url may not.
_PLACEHOLDER_KEY = "not-needed"


def create_chat_model(config: ModelConfig) -> ChatOpenAI:
    """A streaming ``ChatOpenAI`` with usage reporting, explicit timeouts and no SDK retries.

    The model node owns retries (see :mod:`streamagent.retry`), so the SDK's are off.
    No network I/O happens here.
    """
    config.require_endpoint()
    return ChatOpenAI(
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
