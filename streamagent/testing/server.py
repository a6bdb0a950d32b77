"""An OpenAI-compatible Chat Completions server that answers from a script, over real HTTP.

It runs on loopback in a background thread with its own asyncio event loop (aiohttp), speaks the
real wire format (SSE chunks, tool-call argument deltas, usage chunk, ``[DONE]``) and injects
faults on demand (HTTP errors with ``Retry-After``, stalls, disconnects, malformed chunks, streams
without ``[DONE]``). One server handles a thousand concurrent streams.

Example:
    >>> import openai
    >>> from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
    >>> with ScriptedOpenAIServer(["Hello, world!"]) as server:
    ...     client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    ...     stream = client.chat.completions.create(
    ...         model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
    ...     )
    ...     "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    'Hello, world!'
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from streamagent.testing._lifecycle import StartStop
from streamagent.testing.raw import RawReply
from streamagent.testing.responses_wire import ResponsesEncoder, responses_usage
from streamagent.testing.script import (
    DEFAULT_FAULT_TEXT,
    Fault,
    RecordedRequest,
    Reply,
    ScriptItem,
    parse_script_item,
)
from streamagent.testing.wire import (
    MALFORMED_EVENT,
    ChunkEncoder,
    ReplyPlan,
    SseEvent,
    error_body,
    http_fault_headers,
)

__all__ = ["Responder", "ScriptedOpenAIServer"]

logger = logging.getLogger(__name__)

Responder = Callable[[RecordedRequest], Reply | Fault | str]

_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 5.0
_SHUTDOWN_GRACE_SECONDS = 0.25
_FLUSH_POLLS = 1000  # x 1 ms: how long an abort waits for written bytes to leave
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}


def _peer(request: web.Request) -> str | None:
    """``host:port`` of the client's connection (one per TCP connection, so reuse shows)."""
    transport = request.transport
    address = transport.get_extra_info("peername") if transport is not None else None
    return f"{address[0]}:{address[1]}" if address else None


class ScriptedOpenAIServer(StartStop):
    """A scripted OpenAI-compatible endpoint at :attr:`base_url` (``http://127.0.0.1:PORT/v1``).

    Each ``POST /v1/chat/completions`` consumes the next script item; when the script is empty the
    ``responder`` answers; with neither the request gets HTTP 400 ("script exhausted"). Every
    request is recorded in :attr:`requests` before it is answered. Nothing happens until
    :meth:`start` (or ``with`` / ``async with``).

    Args:
        script: Replies, faults, or strings (shorthand for ``Reply(content=...)``), in order.
        responder: Called with the request when the script is empty.
        token_delay_seconds: Pause before each content / tool-call chunk (per-reply override:
            ``Reply.token_delay_seconds``).
        pace_on_schedule: Send paced chunks on a fixed schedule (``token_delay_seconds`` apart
            from the start of the reply) instead of pausing after each one: a chunk held back
            (by this server's own load, a stall fault, or a client that reads too slowly for
            TCP's flow control) is followed by the next ones as soon as they are due, so a reply
            keeps the rate asked for unless the client falls behind for good. Load benchmarks
            use it to tell a client that keeps up from one that does not.
        model: Model id of ``GET /v1/models`` and of responses to requests without ``model``.
        host: Interface to bind (loopback by default).
        port: TCP port; 0 picks a free one.

    Example:
        >>> import openai
        >>> from streamagent.testing import Fault, ScriptedOpenAIServer
        >>> with ScriptedOpenAIServer([Fault.http(429, retry_after_seconds=1), "ok"]) as server:
        ...     client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        ...     msgs = [{"role": "user", "content": "hi"}]
        ...     try:
        ...         client.chat.completions.create(model="gpt-4o", messages=msgs)
        ...     except openai.RateLimitError as exc:
        ...         print(exc.response.headers["retry-after"])
        ...     print(client.chat.completions.create(model="gpt-4o", messages=msgs)
        ...           .choices[0].message.content)
        ...     print(len(server.requests), server.remaining)
        1
        ok
        2 0
    """

    def __init__(
        self,
        script: Iterable[ScriptItem] = (),
        *,
        responder: Responder | None = None,
        token_delay_seconds: float = 0.0,
        pace_on_schedule: bool = False,
        model: str = "gpt-4o",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if token_delay_seconds < 0:
            raise ValueError(f"token_delay_seconds must be >= 0, got {token_delay_seconds}")
        self.pace_on_schedule = pace_on_schedule
        self._script: deque[ScriptItem] = deque(parse_script_item(item) for item in script)
        self._responder = responder
        self.token_delay_seconds = float(token_delay_seconds)
        self.model = model
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._next_call_number = 1
        self._completion_numbers = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1`` — pass it as ``base_url`` to OpenAI clients."""
        if self._port is None:
            raise RuntimeError("ScriptedOpenAIServer is not started: call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/v1"

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("ScriptedOpenAIServer is not started: call start() first")
        return self._port

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the chat-completion requests received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        """How many script items are not consumed yet."""
        with self._lock:
            return len(self._script)

    def enqueue(self, *items: Reply | Fault | str) -> None:
        """Append items to the script (thread-safe; allowed while running)."""
        parsed = [parse_script_item(item) for item in items]
        with self._lock:
            self._script.extend(parsed)

    def start(self) -> ScriptedOpenAIServer:
        """Bind and serve in a background thread; returns ``self`` once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("ScriptedOpenAIServer is already started")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=self._serve,
            args=(loop, ready, failure),
            name="ScriptedOpenAIServer",
            daemon=True,
        )
        self._loop, self._thread = loop, thread
        thread.start()
        if not ready.wait(_START_TIMEOUT_SECONDS):
            raise RuntimeError("ScriptedOpenAIServer did not start in time")
        if failure:
            thread.join(_STOP_TIMEOUT_SECONDS)
            self._loop = self._thread = None
            error = failure[0]
            raise RuntimeError(f"ScriptedOpenAIServer failed to start: {error}") from error
        logger.debug("scripted OpenAI server listening at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving (open streams are cut after a short grace period). Idempotent."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT_SECONDS + _SHUTDOWN_GRACE_SECONDS)
        self._loop = self._thread = None
        self._port = None

    async def __aenter__(self) -> ScriptedOpenAIServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)

    # -- the background thread ------------------------------------------------------------

    def _serve(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                loop.run_until_complete(self._bind())
            except OSError as exc:
                failure.append(exc)
                return
            finally:
                ready.set()
            loop.run_forever()
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
        finally:
            self._runner = None
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def build_app(self) -> web.Application:
        """The aiohttp application (routes only); used by :meth:`start` and stand-alone mode."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/responses", self._responses)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/models", self._models)
        return app

    async def _bind(self) -> None:
        runner = web.AppRunner(
            self.build_app(), access_log=None, shutdown_timeout=_SHUTDOWN_GRACE_SECONDS
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=2048)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses  # the bound (host, port, …) of each listening socket
        self._port = int(addresses[0][1]) if addresses else self._requested_port

    # -- handlers -------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        data = {"id": self.model, "object": "model", "created": 0, "owned_by": "streamagent"}
        return _json_response(200, {"object": "list", "data": [data]})

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/responses``: the same script, answered in the Responses API's format."""
        return await self._chat(request, responses_api=True)

    async def _chat(
        self, request: web.Request, *, responses_api: bool = False
    ) -> web.StreamResponse:
        raw = await request.read()
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=_parse_json(raw),
            peer=_peer(request),
        )
        number, item = self._take(record)
        if not isinstance(record.body, dict):
            return _error_response(400, "request body must be a JSON object", number)
        resolved = self._resolve(record, item, number)
        if isinstance(resolved, web.Response):
            return resolved
        return await self._answer(request, record, resolved, number, responses_api=responses_api)

    def _resolve(  # noqa: PLR0911 - one return per kind of script item
        self, record: RecordedRequest, item: ScriptItem | None, number: int
    ) -> Reply | web.Response:
        """The reply to stream, or the complete response (HTTP faults, exhaustion)."""
        if item is None:
            asked = self._ask_responder(record, number)
            if isinstance(asked, web.Response):
                return asked
            item = asked
        if isinstance(item, str):
            return Reply(item)
        if isinstance(item, RawReply):  # replayed bytes, exactly as given
            raw = web.Response(status=item.status, body=item.body)
            raw.headers["Content-Type"] = item.content_type
            raw.headers["x-request-id"] = _request_id(number)
            return raw
        if isinstance(item, Fault):
            if item.kind == "http":
                return _fault_response(item, number)
            return Reply(DEFAULT_FAULT_TEXT, fault=item)
        if item.fault is not None and item.fault.kind == "http":
            return _fault_response(item.fault, number)
        return item

    def _take(self, record: RecordedRequest) -> tuple[int, ScriptItem | None]:
        with self._lock:
            self._requests.append(record)
            number = len(self._requests)
            if not isinstance(record.body, dict) or not self._script:
                return number, None
            return number, self._script.popleft()

    def _ask_responder(self, record: RecordedRequest, number: int) -> ScriptItem | web.Response:
        if self._responder is None:
            message = f"ScriptedOpenAIServer: script exhausted (request #{number})"
            logger.warning("%s", message)
            return _error_response(400, message, number)
        try:
            return parse_script_item(self._responder(record))
        except Exception as exc:
            logger.exception("ScriptedOpenAIServer: responder failed on request #%d", number)
            message = f"ScriptedOpenAIServer: responder raised {type(exc).__name__}: {exc}"
            return _error_response(500, message, number)

    def _plan(self, record: RecordedRequest, reply: Reply) -> tuple[ReplyPlan, ChunkEncoder]:
        with self._lock:
            first_call = self._next_call_number
            self._next_call_number += len(reply.tool_calls)
            completion_number = next(self._completion_numbers)
        model = record.body.get("model") if isinstance(record.body, dict) else None
        encoder = ChunkEncoder(
            completion_id=f"chatcmpl-scripted{completion_number:06d}",
            created=int(time.time()),
            model=model if isinstance(model, str) and model else self.model,
        )
        plan = ReplyPlan.build(reply, request_body=record.body, first_call_number=first_call)
        return plan, encoder

    async def _answer(
        self,
        request: web.Request,
        record: RecordedRequest,
        reply: Reply,
        number: int,
        *,
        responses_api: bool = False,
    ) -> web.StreamResponse:
        plan, encoder = self._plan(record, reply)
        if responses_api:
            encoded = ResponsesEncoder(
                response_id=encoder.completion_id.replace("chatcmpl-", "resp_"),
                created=encoder.created,
                model=encoder.model,
            )

            def events(complete: bool) -> Iterator[SseEvent]:
                return encoded.events(plan, complete=complete)

            def body(complete: bool) -> dict[str, Any]:
                status = "completed" if complete else "in_progress"
                usage = responses_usage(plan) if complete else None
                return encoded.response(status, encoded.output_items(plan), usage)
        else:

            def events(complete: bool) -> Iterator[SseEvent]:
                return plan.events(encoder, include_usage=record.include_usage, complete=complete)

            def body(complete: bool) -> dict[str, Any]:
                return plan.completion(encoder, complete=complete)

        if record.stream:
            delay = reply.token_delay_seconds
            delay = self.token_delay_seconds if delay is None else delay
            return await _stream(
                request,
                events,
                reply.fault,
                delay_seconds=delay,
                on_schedule=self.pace_on_schedule,
                number=number,
            )
        return await _complete(request, body, reply.fault, number)


async def _stream(
    request: web.Request,
    events: Callable[[bool], Iterator[SseEvent]],
    fault: Fault | None,
    *,
    delay_seconds: float,
    number: int,
    on_schedule: bool = False,
) -> web.StreamResponse:
    """Write the SSE ``events(complete)`` of a reply, applying ``fault`` at its chunk count."""
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


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending when serving stops and wait for them to end.

    A handler sleeping in a stall whose client already left is no longer tracked by aiohttp's
    shutdown; closing the loop with it pending printed "Task was destroyed but it is pending!".
    """
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


async def _apply_stream_fault(
    request: web.Request, response: web.StreamResponse, fault: Fault
) -> bool:
    """Apply an in-stream fault; True when the response is over."""
    if fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
        return False
    if fault.kind == "disconnect":
        await _abort(request)
        return True
    if fault.kind == "malformed":
        await response.write(MALFORMED_EVENT)
        await response.write_eof()
        return True
    return False  # no_done is applied by leaving the tail events out


async def _complete(
    request: web.Request,
    body_of: Callable[[bool], dict[str, Any]],
    fault: Fault | None,
    number: int,
) -> web.StreamResponse:
    """Answer a non-streamed request with ``body_of(complete)``, applying the reply's fault."""
    if fault is not None and fault.kind == "stall":
        await asyncio.sleep(fault.seconds)
    if fault is not None and fault.kind == "disconnect":
        await _abort(request)
        return web.Response(status=200)
    if fault is not None and fault.kind == "malformed":
        body = b'{"id": "chatcmpl-malformed", "object": "chat.completion", "choices": ['
        return web.Response(
            status=200,
            body=body,
            content_type="application/json",
            headers={"x-request-id": _request_id(number)},
        )
    complete = fault is None or fault.kind != "no_done"
    return _json_response(200, body_of(complete), number)


async def _abort(request: web.Request) -> None:
    """Let written bytes reach the socket, then reset the connection (no clean end)."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(_FLUSH_POLLS):
        if not transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.001)
    transport.abort()


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _request_id(number: int) -> str:
    return f"req_scripted_{number}"


def _json_response(status: int, body: Any, number: int | None = None) -> web.Response:
    headers = {"x-request-id": _request_id(number)} if number is not None else None
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


def _error_response(status: int, message: str, number: int) -> web.Response:
    return _json_response(status, error_body(status, message), number)


def _fault_response(fault: Fault, number: int) -> web.Response:
    message = fault.message or f"ScriptedOpenAIServer: injected HTTP {fault.status} fault"
    response = _json_response(
        fault.status, error_body(fault.status, message, code=fault.code), number
    )
    response.headers.update(http_fault_headers(fault, now_epoch_seconds=time.time()))
    return response
