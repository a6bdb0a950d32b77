"""The HTTP side of a :class:`~streamagent.testing.ScriptedOpenAIServer`'s answers (aiohttp).

A rendered reply goes out as a paced SSE stream (:func:`stream_reply`) or one JSON body
(:func:`complete_reply`), with the reply's in-stream :class:`~streamagent.testing.script.Fault`
applied at its chunk count: a stall, a disconnect (the connection is reset after the written
bytes left: :func:`abort`), a malformed event, or an end without ``[DONE]``. HTTP faults,
refusals and replayed raw replies are whole responses (:func:`answer_response`). Every
response carries an ``x-request-id`` of its request number.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from aiohttp import web

from streamagent.testing.raw import RawReply
from streamagent.testing.script import Fault
from streamagent.testing.turns import Refusal
from streamagent.testing.wire import MALFORMED_EVENT, SseEvent, error_body, http_fault_headers

__all__ = [
    "abort",
    "answer_response",
    "complete_reply",
    "error_response",
    "json_response",
    "parse_json",
    "peer",
    "stream_reply",
]

logger = logging.getLogger(__name__)

_FLUSH_POLLS = 1000  # x 1 ms: how long an abort waits for written bytes to leave
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_MALFORMED_COMPLETION = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": ['


def peer(request: web.Request) -> str | None:
    """``host:port`` of the client's connection (one per TCP connection, so reuse shows)."""
    transport = request.transport
    address = transport.get_extra_info("peername") if transport is not None else None
    return f"{address[0]}:{address[1]}" if address else None


def parse_json(raw: bytes) -> Any:
    """The JSON of a request body; ``None`` when it is empty or not JSON."""
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _request_id(number: int) -> str:
    return f"req_scripted_{number}"


def json_response(status: int, body: Any, number: int | None = None) -> web.Response:
    """A JSON response (with the ``x-request-id`` of request ``number``, if given)."""
    headers = {"x-request-id": _request_id(number)} if number is not None else None
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def error_response(status: int, message: str, number: int) -> web.Response:
    """An OpenAI-style error response."""
    return json_response(status, error_body(status, message), number)


def answer_response(answer: Fault | Refusal | RawReply, number: int) -> web.Response:
    """The whole response of an HTTP fault, a refusal or a replayed raw reply."""
    if isinstance(answer, Refusal):
        return error_response(answer.status, answer.message, number)
    if isinstance(answer, RawReply):  # replayed bytes, exactly as given
        raw = web.Response(status=answer.status, body=answer.body)
        raw.headers["Content-Type"] = answer.content_type
        raw.headers["x-request-id"] = _request_id(number)
        return raw
    message = answer.message or f"ScriptedOpenAIServer: injected HTTP {answer.status} fault"
    response = json_response(
        answer.status, error_body(answer.status, message, code=answer.code), number
    )
    response.headers.update(http_fault_headers(answer, now_epoch_seconds=time.time()))
    return response


async def stream_reply(
    request: web.Request,
    events: Callable[[bool], Iterator[SseEvent]],
    fault: Fault | None,
    *,
    delay_seconds: float,
    number: int,
    on_schedule: bool = False,
) -> web.StreamResponse:
    """Write the SSE ``events(complete)`` of a reply, applying ``fault`` at its chunk count.

    ``delay_seconds`` paces content and tool-call events: a pause before each, or with
    ``on_schedule`` a fixed schedule from the start of the reply (a late event is followed at
    once by those already due).
    """
    response = web.StreamResponse(
        status=200, headers={**_SSE_HEADERS, "x-request-id": _request_id(number)}
    )
    await response.prepare(request)
    complete = fault is None or fault.kind != "no_done"
    sent = 0
    loop = asyncio.get_running_loop()
    due = loop.time()  # on_schedule: when the next paced chunk is due
    try:
        for event in events(complete):
            if fault is not None and sent == fault.after_chunks:
                if await _apply_stream_fault(request, response, fault):
                    return response
                fault = None
            if event.paced and delay_seconds > 0:
                if on_schedule:
                    due += delay_seconds
                    wait = due - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                else:
                    await asyncio.sleep(delay_seconds)
            await response.write(event.data)
            sent += 1
        if fault is not None:
            await _apply_stream_fault(request, response, fault)
    except ConnectionError:
        logger.debug("client of request #%d went away mid-stream", number)
    return response


async def _apply_stream_fault(
    request: web.Request, response: web.StreamResponse, fault: Fault
) -> bool:
    """Apply an in-stream fault; True when the response is over."""
    if fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
        return False
    if fault.kind == "disconnect":
        await abort(request)
        return True
    if fault.kind == "malformed":
        await response.write(MALFORMED_EVENT)
        await response.write_eof()
        return True
    return False  # no_done is applied by leaving the tail events out


async def complete_reply(
    request: web.Request,
    body_of: Callable[[bool], dict[str, Any]],
    fault: Fault | None,
    number: int,
) -> web.StreamResponse:
    """Answer a non-streamed request with ``body_of(complete)``, applying the reply's fault."""
    if fault is not None and fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
    if fault is not None and fault.kind == "disconnect":
        await abort(request)
        return web.Response(status=200)
    if fault is not None and fault.kind == "malformed":
        return web.Response(
            status=200,
            body=_MALFORMED_COMPLETION,
            content_type="application/json",
            headers={"x-request-id": _request_id(number)},
        )
    complete = fault is None or fault.kind != "no_done"
    return json_response(200, body_of(complete), number)


async def abort(request: web.Request) -> None:
    """Let written bytes reach the socket, then reset the connection (no clean end)."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(_FLUSH_POLLS):
        if not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.001)
    transport.abort()
