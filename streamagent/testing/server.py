"""An OpenAI-compatible Chat Completions server that answers from a script, over real HTTP.

It runs on loopback in a background thread with its own asyncio event loop (aiohttp), speaks the
real wire format (SSE chunks, tool-call argument deltas, usage chunk, ``[DONE]``) and injects
faults on demand (HTTP errors with ``Retry-After``, stalls, disconnects, malformed chunks, streams
without ``[DONE]``). One server handles a thousand concurrent streams.

This module is the server itself: its routes and the background thread. Which answer a request
gets is :mod:`streamagent.testing.turns` (pure), how it goes out over HTTP
:mod:`streamagent.testing.respond`, the wire formats :mod:`~streamagent.testing.wire` and
:mod:`~streamagent.testing.responses_wire`.

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
import logging
import threading
from collections.abc import Iterable
from types import TracebackType

from aiohttp import web

from streamagent.testing._lifecycle import StartStop
from streamagent.testing.respond import (
    answer_response,
    complete_reply,
    error_response,
    json_response,
    parse_json,
    peer,
    stream_reply,
)
from streamagent.testing.script import Fault, RecordedRequest, Reply, ScriptItem
from streamagent.testing.turns import Responder, ScriptedTurns

__all__ = ["Responder", "ScriptedOpenAIServer"]

logger = logging.getLogger(__name__)

_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 5.0
_SHUTDOWN_GRACE_SECONDS = 0.25


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
        self._turns = ScriptedTurns(script, responder)
        self.token_delay_seconds = float(token_delay_seconds)
        self.model = model
        self.host = host
        self._requested_port = port
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
        return self._turns.requests

    @property
    def remaining(self) -> int:
        """How many script items are not consumed yet."""
        return self._turns.remaining

    def enqueue(self, *items: Reply | Fault | str) -> None:
        """Append items to the script (thread-safe; allowed while running)."""
        self._turns.enqueue(*items)

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
        return json_response(200, {"object": "list", "data": [data]})

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
            body=parse_json(raw),
            peer=peer(request),
        )
        number, item = self._turns.take(record)
        if not isinstance(record.body, dict):
            return error_response(400, "request body must be a JSON object", number)
        answer = self._turns.answer(record, item, number)
        if not isinstance(answer, Reply):
            return answer_response(answer, number)
        return await self._send(request, record, answer, number, responses_api=responses_api)

    async def _send(
        self,
        request: web.Request,
        record: RecordedRequest,
        reply: Reply,
        number: int,
        *,
        responses_api: bool = False,
    ) -> web.StreamResponse:
        rendering = self._turns.render(
            record, reply, default_model=self.model, responses_api=responses_api
        )
        if not record.stream:
            return await complete_reply(request, rendering.body, reply.fault, number)
        delay = reply.token_delay_seconds
        return await stream_reply(
            request,
            rendering.events,
            reply.fault,
            delay_seconds=self.token_delay_seconds if delay is None else delay,
            on_schedule=self.pace_on_schedule,
            number=number,
        )


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
