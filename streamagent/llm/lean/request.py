"""The request of a lean stream: ``ChatOpenAI``'s own body, ready to send (pure, no I/O).

:meth:`LeanChatOpenAI.lean_request <streamagent.llm.lean.chat_model.LeanChatOpenAI.lean_request>`
asks ``ChatOpenAI`` for the payload it would send (``_get_request_payload``) and
:func:`request_from_payload` turns it into a :class:`LeanRequest`: the SDK ``create()`` options
that are not body keys (``extra_headers``, ``extra_query``, ``extra_body``, ``timeout``) are
applied the way the SDK applies them, the body is serialised with ``orjson``.

Example:
    >>> request = request_from_payload(
    ...     {"model": "gpt-4o", "messages": [], "stream": True, "extra_query": {"v": "1"}},
    ...     url="http://127.0.0.1:1/v1/chat/completions",
    ...     headers={"Authorization": "Bearer sk-test"},
    ...     custom_query=None,
    ...     default_timeout=30.0,
    ... )
    >>> request.body, request.params, request.timeout.read
    (b'{"model":"gpt-4o","messages":[],"stream":true}', {'v': '1'}, 30.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson
from pydantic import BaseModel

__all__ = ["LeanRequest", "httpx2_timeout", "request_from_payload"]


@dataclass(frozen=True, slots=True)
class LeanRequest:
    """One streamed Chat Completions request, ready to send (built without I/O)."""

    url: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any] | None
    timeout: httpx2.Timeout


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"cannot serialise {type(value).__name__} into the request body")


def httpx2_timeout(value: Any) -> httpx2.Timeout:
    """The SDK client's timeout (``httpx``/``httpx2`` Timeout, number or None) as httpx2's.

    >>> httpx2_timeout(5).connect, httpx2_timeout(None).read
    (5.0, 600.0)
    """
    if all(hasattr(value, a) for a in ("connect", "read", "write", "pool")):
        return httpx2.Timeout(
            connect=value.connect, read=value.read, write=value.write, pool=value.pool
        )
    if isinstance(value, int | float):
        return httpx2.Timeout(float(value))
    return httpx2.Timeout(600.0, connect=5.0)  # the openai SDK's default


def request_from_payload(
    payload: dict[str, Any],
    *,
    url: str,
    headers: dict[str, str],
    custom_query: Mapping[str, Any] | None,
    default_timeout: Any,
) -> LeanRequest:
    """The request of ``payload`` (``ChatOpenAI``'s, consumed): its SDK options applied.

    ``headers`` are the client's (default and auth headers), ``custom_query`` its default
    query, ``default_timeout`` its timeout (used unless the payload names one).
    """
    extra_headers = payload.pop("extra_headers", None)
    if extra_headers:
        headers = {**headers, **{k: v for k, v in extra_headers.items() if isinstance(v, str)}}
    params = payload.pop("extra_query", None) or None
    if custom_query:
        params = {**custom_query, **(params or {})}
    extra_body = payload.pop("extra_body", None)
    if extra_body:
        payload.update(extra_body)
    timeout = payload.pop("timeout", None)
    return LeanRequest(
        url=url,
        headers=headers,
        body=orjson.dumps(payload, default=_json_default),
        params=params,
        timeout=httpx2_timeout(default_timeout if timeout is None else timeout),
    )
