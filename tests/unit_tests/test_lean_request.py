"""The lean transport's request: ChatOpenAI's payload with the SDK's create() options applied."""

from __future__ import annotations

from typing import Any

import httpx2
import orjson
import pytest
from pydantic import BaseModel

from streamagent.llm.lean.request import httpx2_timeout, request_from_payload

URL = "http://127.0.0.1:1/v1/chat/completions"
HEADERS = {"Authorization": "Bearer sk-test"}


def build(payload: dict[str, Any], **options: Any) -> Any:
    return request_from_payload(
        payload,
        url=URL,
        headers=options.pop("headers", HEADERS),
        custom_query=options.pop("custom_query", None),
        default_timeout=options.pop("default_timeout", 30.0),
    )


def test_extra_options_leave_the_body_and_go_where_the_sdk_sends_them() -> None:
    request = build(
        {
            "model": "m",
            "messages": [],
            "stream": True,
            "extra_headers": {"X-Trace": "1", "X-Omit": None},
            "extra_query": {"v": "2"},
            "extra_body": {"user": "u"},
            "timeout": 7.0,
        },
        custom_query={"api-version": "1", "v": "1"},
    )
    assert orjson.loads(request.body) == {"model": "m", "messages": [], "stream": True, "user": "u"}
    assert request.headers == {**HEADERS, "X-Trace": "1"}
    assert request.params == {"api-version": "1", "v": "2"}, "the call's query wins"
    assert request.timeout == httpx2.Timeout(7.0)
    assert request.url == URL


def test_the_client_headers_are_not_changed_by_extra_headers() -> None:
    headers = dict(HEADERS)
    build({"model": "m", "extra_headers": {"X-Trace": "1"}}, headers=headers)
    assert headers == HEADERS


def test_without_options_the_client_defaults_apply() -> None:
    request = build({"model": "m"}, default_timeout=None)
    assert request.params is None
    assert request.timeout == httpx2.Timeout(600.0, connect=5.0)


def test_pydantic_values_in_the_body_are_serialised_and_others_refused() -> None:
    class Schema(BaseModel):
        name: str
        size: int = 0

    request = build({"model": "m", "x": Schema(name="n")})
    assert orjson.loads(request.body)["x"] == {"name": "n"}
    with pytest.raises(TypeError):
        build({"model": "m", "x": object()})


def test_timeouts_of_either_http_library_keep_their_parts() -> None:
    original = httpx2.Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
    assert httpx2_timeout(original) == original
    assert httpx2_timeout(2) == httpx2.Timeout(2.0)
