"""Which ``ChatOpenAI`` calls the lean transport takes: an allowlist (pure, no I/O).

The lean transport (:mod:`streamagent.llm.lean.chat_model`) sends ``ChatOpenAI``'s own request
body and feeds every chunk through ``ChatOpenAI``'s own conversion, so it is byte-identical to
the stock path *for the request shapes the differential tests cover*. Only those are taken:

- the model's configuration: every ``ChatOpenAI`` field whose value differs from its default
  is in :data:`LEAN_FIELDS` (a new option of a newer langchain-openai is therefore *not* in
  it, and takes the stock path until it has been compared);
- the client: a plain string API key, no custom HTTP client (the factory's per-loop one is
  the default), no proxy, no gateway or
  provider runtime, no response headers in the output, ``n`` of 1;
- each request's body: every key is in :data:`LEAN_PAYLOAD_KEYS` (``response_format``,
  the Responses API's keys, ``logprobs``, audio, prediction … are not), ``stream_options``
  asks for usage only, and ``extra_body`` adds only allowlisted keys.

Anything else goes through ``ChatOpenAI`` unchanged.

Example:
    >>> payload_is_lean({"model": "m", "messages": [], "stream": True})
    True
    >>> payload_is_lean({"model": "m", "messages": [], "stream": True, "response_format": {}})
    False
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from streamagent.llm.loop_client import is_per_loop_client

__all__ = [
    "LEAN_FIELDS",
    "LEAN_PAYLOAD_KEYS",
    "non_default_fields",
    "payload_is_lean",
    "unsupported_fields",
]

#: ``ChatOpenAI`` fields the lean transport reproduces whatever their value (client plumbing,
#: sampling options that only change the request body, LangChain runnable metadata).
LEAN_FIELDS = frozenset(
    {
        # set by ChatOpenAI's own validators
        "client",
        "async_client",
        "root_client",
        "root_async_client",
        "profile",
        "metadata",
        # endpoint and client options (checked again on the built client)
        "model_name",
        "openai_api_key",
        "openai_api_base",
        "openai_organization",
        "request_timeout",
        "max_retries",
        "default_headers",
        "default_query",
        "stream_chunk_timeout",
        # streaming switches the lean transport implements
        "streaming",
        "stream_usage",
        "disable_streaming",
        "output_version",
        # request body options (the body is ChatOpenAI's own)
        "temperature",
        "max_tokens",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "n",
        "model_kwargs",
        "extra_body",
        "disabled_params",
        # LangChain runnable options
        "name",
        "tags",
        "callbacks",
        "verbose",
        "cache",
        "rate_limiter",
        "tiktoken_model_name",
        "custom_get_token_ids",
    }
)

#: Keys of a streamed Chat Completions body the lean transport is compared on.
LEAN_PAYLOAD_KEYS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
        "n",
        "user",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        # SDK create() options, not body keys (extra_body is checked key by key)
        "extra_headers",
        "extra_query",
        "extra_body",
        "timeout",
    }
)

_NOT_SET = object()


def non_default_fields(model: BaseModel) -> list[str]:
    """The names of ``model``'s fields whose value differs from the field's default."""
    names: list[str] = []
    for name, info in type(model).model_fields.items():
        value = getattr(model, name, _NOT_SET)
        try:
            default = info.get_default(call_default_factory=True, validated_data={})
        except Exception:  # noqa: BLE001 - a factory needing other fields: treat as changed
            default = _NOT_SET
        try:
            same = value is default or bool(value == default)
        except Exception:  # noqa: BLE001 - uncomparable values count as changed
            same = False
        if not same:
            names.append(name)
    return names


def unsupported_fields(model: BaseModel) -> list[str]:
    """The non-default fields of ``model`` that are not in :data:`LEAN_FIELDS`; an
    ``http_async_client`` the factory made (a per-loop one) counts as the default client."""
    return [
        name
        for name in non_default_fields(model)
        if name not in LEAN_FIELDS
        and not (name == "http_async_client" and is_per_loop_client(getattr(model, name)))
    ]


def payload_is_lean(payload: Mapping[str, Any]) -> bool:
    """Whether a request body (``ChatOpenAI._get_request_payload``) has only allowlisted keys."""
    if any(key not in LEAN_PAYLOAD_KEYS for key in payload):
        return False
    options = payload.get("stream_options")
    if options is not None and dict(options) != {"include_usage": True}:
        return False
    if payload.get("n") not in (None, 1):
        return False
    extra = payload.get("extra_body")
    if extra is not None:
        if not isinstance(extra, Mapping):
            return False
        if any(k not in LEAN_PAYLOAD_KEYS or k.startswith("extra_") for k in extra):
            return False
    return True
