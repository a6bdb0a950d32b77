"""``LeanChatOpenAI``: ``ChatOpenAI`` that streams Chat Completions without the SDK's typed chunks.

About three quarters of the ``openai`` SDK's client time per streamed chunk goes into building
typed ``ChatCompletionChunk`` objects that ``ChatOpenAI`` immediately turns back into dicts
(``chunk.model_dump()``). ``LeanChatOpenAI`` keeps everything else of ``ChatOpenAI`` and
changes only the transport of a streamed Chat Completions call:

- the request body is ``ChatOpenAI``'s own (``_get_request_payload``), sent as JSON with the
  SDK client's own headers (``Authorization``, organization/project, default headers) to
  ``{base_url}chat/completions`` — the URL the SDK builds — with the SDK client's timeouts,
  over a pooled ``aiohttp`` session per event loop for async streams
  (:mod:`streamagent.llm.lean.transport`: a third of the CPU per socket read of ``httpx2``) and a
  pooled ``httpx2`` client for sync ones;
- the SSE body is decoded by :class:`streamagent.llm.lean.sse.SseDecoder` (``orjson``, each
  event parsed
  when the stream reaches it) and each chunk dict goes through ``ChatOpenAI``'s own
  ``_convert_chunk_to_generation_chunk`` — the same message chunks, ``response_metadata``
  (``finish_reason``, ``model_name``, ``system_fingerprint``), ``usage_metadata`` and
  ``on_llm_new_token`` callbacks — except a plain text delta, whose identical objects
  :mod:`streamagent.llm.lean.text_chunks` builds without validation;
- failures become the exceptions the SDK raises (``openai.APIStatusError`` subclasses built
  from the response, ``APITimeoutError``, ``APIConnectionError``, ``json.JSONDecodeError`` for
  a malformed chunk, ``APIError`` for an in-stream error event), wrapped by ``ChatOpenAI``'s own
  handlers, so :func:`streamagent.llm.retry.classify_error` sees exactly what it sees today;
- async streams honour ``stream_chunk_timeout`` (time between parsed chunks) with one timer
  per call instead of a task per chunk.

Anything unusual — the Responses API, ``response_format``, ``include_response_headers``, a
gateway, a custom ``http_client`` / ``http_async_client``, a proxy, an API-key callable —
goes through ``ChatOpenAI`` unchanged. Non-streamed calls are not touched.

Example:
    >>> from pydantic import SecretStr
    >>> llm = LeanChatOpenAI(model="gpt-4o-mini", api_key=SecretStr("sk-test"), max_retries=0)
    >>> isinstance(llm, ChatOpenAI), llm.lean_url()
    (True, 'https://api.openai.com/v1/chat/completions')
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx2
import openai
import orjson
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, PrivateAttr

from streamagent._upstream import fast_path_available
from streamagent._upstream import langchain_openai_private as lco
from streamagent._upstream import openai_private as oai
from streamagent.llm.lean.astream import astream_compact
from streamagent.llm.lean.eligibility import payload_is_lean, unsupported_fields
from streamagent.llm.lean.sse import SseDecoder, decode_payload
from streamagent.llm.lean.text_chunks import TextChunkFactory
from streamagent.llm.lean.transport import (
    SHARED_SESSIONS,
    TRANSPORT_ERRORS,
    AioSessions,
    BodyReader,
    as_openai_error,
    client_timeout,
    env_proxy_for,
    status_response,
)

__all__ = ["LeanChatOpenAI", "LeanRequest"]

logger = logging.getLogger(__name__)

# what the SDK's stream reader maps to APITimeoutError / APIConnectionError (sync streams;
# async ones use _aio_transport.TRANSPORT_ERRORS)
_TIMEOUTS: tuple[type[BaseException], ...] = (httpx2.TimeoutException,)
_REQUEST_ERRORS: tuple[type[BaseException], ...] = (httpx2.RequestError, ssl.SSLError)
# how often (at most) a stream of already-buffered chunks lets the event loop run
_PAUSE_EVERY_SECONDS = 0.001
#: Loop turns given away after the first token. A consumer in another task needs several to
#: see it (LangGraph's stream: callback -> call_soon_threadsafe -> queue waiter -> asyncio.wait
#: -> astream, 4 turns); with one, it waited for the next pause, ~1 ms per hop, when a burst of
#: chunks was already buffered.
_FIRST_TOKEN_YIELDS = 8
# how long to wait for the end of the body after ``[DONE]`` (see ``_adrain``)
_DRAIN_SECONDS = 0.25
# SDK ``create()`` options that are not part of the JSON body
_EXTRA_OPTIONS = ("extra_headers", "extra_query", "extra_body", "timeout")


def _json_default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    raise TypeError(f"cannot serialise {type(value).__name__} into the request body")


def _httpx2_timeout(value: Any) -> httpx2.Timeout:
    """The SDK client's timeout (``httpx``/``httpx2`` Timeout, number or None) as httpx2's."""
    if all(hasattr(value, a) for a in ("connect", "read", "write", "pool")):
        return httpx2.Timeout(
            connect=value.connect, read=value.read, write=value.write, pool=value.pool
        )
    if isinstance(value, int | float):
        return httpx2.Timeout(float(value))
    return httpx2.Timeout(600.0, connect=5.0)  # the openai SDK's default


@dataclass(frozen=True, slots=True)
class LeanRequest:
    """One streamed Chat Completions request, ready to send (built without I/O)."""

    url: str
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any] | None
    timeout: httpx2.Timeout


_TEXT_CHUNKS = TextChunkFactory()


class _ChunkConverter:
    """Per-stream state turning decoded chunk dicts into generation chunks (pure)."""

    __slots__ = ("_convert", "_default_class", "_direct", "_request", "_url")

    def __init__(self, llm: ChatOpenAI, request: httpx2.Request | None, url: str = "") -> None:
        self._convert = llm._convert_chunk_to_generation_chunk
        self._default_class: type[BaseMessageChunk] = AIMessageChunk
        self._request = request
        self._url = url
        # plain text deltas built directly (identical objects), unless ChatOpenAI's
        # conversion is customised or v1 output is asked for
        self._direct = (
            llm.output_version != "v1"
            and type(llm)._convert_chunk_to_generation_chunk
            is ChatOpenAI._convert_chunk_to_generation_chunk
            and _TEXT_CHUNKS.enabled(self._convert)
        )

    @property
    def request(self) -> httpx2.Request:
        """The request, for the SDK's exceptions (built only when one is raised)."""
        if self._request is None:
            self._request = httpx2.Request("POST", self._url)
        return self._request

    def convert(self, chunk: Any) -> ChatGenerationChunk | None:
        """``ChatOpenAI._astream``'s per-chunk step; an error event raises ``openai.APIError``."""
        if not isinstance(chunk, dict):
            raise openai.APIResponseValidationError(
                response=httpx2.Response(200, request=self.request),
                body=chunk,
                message=f"expected a chat.completion.chunk object, got {type(chunk).__name__}",
            )
        error = chunk.get("error")
        if error:
            message = error.get("message") if isinstance(error, Mapping) else None
            if not message or not isinstance(message, str):
                message = "An error occurred during streaming"
            raise openai.APIError(message=message, request=self.request, body=error)
        if self._direct and self._default_class is AIMessageChunk:
            direct = TextChunkFactory.build(chunk)
            if direct is not None:
                return direct
        # no base generation info: the lean path never reports response headers
        generation = self._convert(chunk, self._default_class, {})
        if generation is not None:
            self._default_class = generation.message.__class__
        return generation

    @staticmethod
    def logprobs(generation: ChatGenerationChunk) -> Any:
        info = generation.generation_info
        return info.get("logprobs") if info else None


#: The sync client's pool: the openai SDK's own limits (httpx's default of 100 connections
#: would make stream 101 wait for a connection until it times out).
_CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


class _ChunkWatchdog:
    """``stream_chunk_timeout`` for one async stream: one timer, re-armed only when it fires.

    ``waiting_since`` is the loop time at which the stream started waiting for its next
    parsed chunk (``None`` while the consumer holds a chunk): consumer time is not counted,
    keep-alive comments do not reset it — the semantics of ``ChatOpenAI``'s per-chunk
    ``asyncio.wait_for``, without a task per chunk.
    """

    __slots__ = ("_handle", "_loop", "_task", "fired", "timeout", "waiting_since")

    def __init__(self, timeout: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.timeout = timeout if timeout and timeout > 0 else 0.0
        self.fired = False
        self.waiting_since: float | None = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        if self.timeout:
            self._handle = self._loop.call_at(self.waiting_since + self.timeout, self._check)

    def now(self) -> float:
        return self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        since = self.waiting_since
        due = (now if since is None else since) + self.timeout
        if since is not None and now >= due and self._task is not None:
            self.fired = True
            self._task.cancel()
            return
        self._handle = self._loop.call_at(due, self._check)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def caused_cancellation(self) -> bool:
        """True when this watchdog's cancel is the *only* one pending on the task.

        A cancel from outside (the caller gave up on the run) that arrives together with a
        fired watchdog must stay a cancellation, never turn into a retryable timeout.
        """
        return self.fired and self._task is not None and self._task.cancelling() == 1

    def timed_out(self, chunks: int, model_name: str | None) -> Exception:
        """After the cancellation this watchdog caused: undo it, return the timeout error."""
        if self._task is not None:
            self._task.uncancel()
        logger.warning(
            "langchain_openai.stream_chunk_timeout fired",
            extra={
                "source": "stream_chunk_timeout",
                "timeout_s": self.timeout,
                "model_name": model_name,
                "chunks_received": chunks,
            },
        )
        error: Exception = lco.StreamChunkTimeoutError(
            self.timeout, model_name=model_name, chunks_received=chunks
        )
        return error


async def _adrain(body: BodyReader) -> None:
    """After ``[DONE]``, read the end of the body so the connection goes back to the pool.

    The chunked-body terminator normally follows ``[DONE]`` at once (then this is free); a
    server that holds the body open longer than :data:`_DRAIN_SECONDS` only costs its
    connection (the answer is complete either way).
    """
    if body.at_eof():
        return
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while await body.read():
                pass
    except TRANSPORT_ERRORS as exc:
        logger.debug("response body not drained after [DONE]: %r", exc)


class LeanChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` whose streamed Chat Completions skip the SDK's typed chunk objects."""

    _lean_sync_client: httpx2.Client | None = PrivateAttr(default=None)
    _lean_async_clients: AioSessions = PrivateAttr(default_factory=lambda: SHARED_SESSIONS)
    _lean_headers: dict[str, str] | None = PrivateAttr(default=None)
    _lean_proxied: bool | None = PrivateAttr(default=None)
    _lean_eligible: bool | None = PrivateAttr(default=None)

    @classmethod
    def lc_id(cls) -> list[str]:
        """``ChatOpenAI``'s id: traces name the run ``ChatOpenAI``; serialised, it loads as one."""
        return ChatOpenAI.lc_id()

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        """Run name ``ChatOpenAI`` (unless named): traces look as they do with ``ChatOpenAI``."""
        return super().get_name(suffix, name=name or self.name or ChatOpenAI.__name__)

    # ------------------------------------------------------------------ pure parts
    def lean_url(self) -> str:
        """``{base_url}chat/completions`` exactly as the SDK joins it: its base URL's path ends
        in ``/`` (``http://host:port`` has the path ``/`` but prints without it)."""
        base = self.root_async_client.base_url
        path = base.raw_path if base.raw_path.endswith(b"/") else base.raw_path + b"/"
        return str(base.copy_with(raw_path=path + b"chat/completions"))

    def _lean_supported(self) -> bool:
        """Whether this model's calls may take the lean path (see :mod:`_lean_eligibility`).

        The configuration is checked once per model object (an allowlist of fields, the
        built client's kind of key, proxy, gateway); each request's body is checked in
        :meth:`lean_request`.
        """
        if not fast_path_available():
            return False
        if self._lean_eligible is None:
            self._lean_eligible = self._eligible_model()
        return self._lean_eligible

    def _eligible_model(self) -> bool:
        unsupported = unsupported_fields(self)
        if unsupported:
            logger.debug("lean transport off for this model: options %s", unsupported)
            return False
        client = self.root_async_client
        return (
            type(client) is openai.AsyncOpenAI  # not Azure or another SDK subclass
            and not self.include_response_headers
            and self.http_client is None
            and self.http_async_client is None
            and not self.openai_proxy
            and self.n in (None, 1)
            and isinstance(client.api_key, str)
            and getattr(client, "_provider_runtime", None) is None
            and not self._uses_gateway
            and oai.custom_query(client) is not None
            and not self._proxied()
        )

    def _proxied(self) -> bool:
        """Whether the environment routes the endpoint through a proxy (read once)."""
        if self._lean_proxied is None:
            self._lean_proxied = env_proxy_for(self.lean_url()) is not None
        return self._lean_proxied

    def _headers(self) -> dict[str, str]:
        if self._lean_headers is None:
            client = self.root_async_client
            headers = {k: v for k, v in client.default_headers.items() if isinstance(v, str)}
            headers.update(client.auth_headers)
            self._lean_headers = headers
        return self._lean_headers

    def lean_request(
        self,
        messages: list[BaseMessage],
        *,
        stop: list[str] | None = None,
        stream_usage: bool | None = None,
        **kwargs: Any,
    ) -> LeanRequest | None:
        """The request ``ChatOpenAI._astream`` would send, or ``None`` when it must send it."""
        if not self._lean_supported():
            return None
        kwargs["stream"] = True
        if self._should_stream_usage(stream_usage, **kwargs):
            kwargs["stream_options"] = {"include_usage": True}
        payload = self._get_request_payload(messages, stop=stop, **kwargs)
        if not payload_is_lean(payload) or self._use_responses_api(payload):
            return None
        headers = self._headers()
        extra_headers = payload.pop("extra_headers", None)
        if extra_headers:
            headers = {**headers, **{k: v for k, v in extra_headers.items() if isinstance(v, str)}}
        params = payload.pop("extra_query", None) or None
        custom_query = oai.custom_query(self.root_async_client)
        if custom_query:
            params = {**custom_query, **(params or {})}
        extra_body = payload.pop("extra_body", None)
        if extra_body:
            payload.update(extra_body)
        timeout = payload.pop("timeout", None)
        return LeanRequest(
            url=self.lean_url(),
            headers=headers,
            body=orjson.dumps(payload, default=_json_default),
            params=params,
            timeout=_httpx2_timeout(self.root_async_client.timeout if timeout is None else timeout),
        )

    # ------------------------------------------------------------------ clients
    def _sync_http(self) -> httpx2.Client:
        if self._lean_sync_client is None:
            self._lean_sync_client = httpx2.Client(limits=_CONNECTION_LIMITS)
        return self._lean_sync_client

    async def _async_http(self) -> aiohttp.ClientSession:
        return await self._lean_async_clients.get()

    @staticmethod
    def _status_error(client: Any, response: httpx2.Response) -> openai.APIStatusError:
        error: openai.APIStatusError = oai.make_status_error(client, response)
        return error

    # ------------------------------------------------------------------ async shell
    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        """``ChatOpenAI.astream`` that keeps a long reply's text, not each chunk object, for
        the final merge (same callbacks, chunks and result; see :mod:`streamagent.llm.chunk_merge`).
        """
        if not fast_path_available() or not self._should_stream(
            async_api=True, **{**kwargs, "stream": True}
        ):
            async for message in super().astream(input, config, stop=stop, **kwargs):
                yield message
            return
        async for chunk in astream_compact(self, input, config, stop=stop, **kwargs):
            yield chunk

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        """Stream through the lean transport when possible, else exactly as ``ChatOpenAI``."""
        request = None
        if not self._use_responses_api({**kwargs, **self.model_kwargs}):
            request = self.lean_request(messages, stop=stop, **dict(kwargs))
        if request is None:
            async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                yield chunk
            return
        try:
            async for chunk in self._astream_lean(request, run_manager):
                yield chunk
        except openai.BadRequestError as exc:
            lco.handle_openai_bad_request(exc)
        except openai.APIError as exc:
            lco.handle_openai_api_error(exc)

    async def _astream_lean(
        self, lean: LeanRequest, run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> AsyncIterator[ChatGenerationChunk]:
        session = await self._async_http()
        try:
            response = await session.post(
                lean.url, data=lean.body, headers=lean.headers, params=lean.params,
                timeout=client_timeout(lean.timeout),
            )  # fmt: skip
        except TRANSPORT_ERRORS as exc:
            raise as_openai_error(exc, lean.url) from exc
        try:
            if response.status >= 400:
                try:
                    body = await response.read()
                except TRANSPORT_ERRORS as exc:
                    raise as_openai_error(exc, lean.url) from exc
                error = status_response(response.status, response.headers, body, lean.url)
                raise self._status_error(self.root_async_client, error)
            chunks = self._aread_chunks(response, lean.url, run_manager, lean.timeout.read)
            async for chunk in chunks:
                yield chunk
        finally:
            response.release()  # back to the pool when the body was read to its end, else closed

    async def _aread_chunks(
        self,
        response: aiohttp.ClientResponse,
        url: str,
        run_manager: AsyncCallbackManagerForLLMRun | None,
        read_timeout_seconds: float | None = None,
    ) -> AsyncIterator[ChatGenerationChunk]:
        decoder = SseDecoder()
        converter = _ChunkConverter(self, None, url)
        watchdog = _ChunkWatchdog(self.stream_chunk_timeout)
        chunks = 0
        token_seen = False
        next_pause = 0.0
        body = BodyReader(
            response.content,
            read_timeout_seconds=read_timeout_seconds,
            connection=response.connection,
        )
        try:
            while data := await body.read():
                payloads = decoder.feed_raw(data)  # parsed one by one: a backlog stays bytes
                for index, payload in enumerate(payloads):
                    generation = converter.convert(decode_payload(payload))
                    if generation is None:
                        continue
                    chunks += 1
                    watchdog.waiting_since = None
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(
                            generation.text,
                            chunk=generation,
                            logprobs=converter.logprobs(generation),
                        )
                    yield generation
                    now = watchdog.waiting_since = watchdog.now()
                    first = bool(generation.text) and not token_seen
                    token_seen = token_seen or first
                    if (first or now >= next_pause) and (
                        index + 1 < len(payloads) or body.buffered()
                    ):
                        # A burst (more chunks at hand): hand the loop over, so a consumer in
                        # another task (LangGraph's stream) sees the first token at once — it
                        # needs several turns — and later ones at most ~1 ms late. A paced
                        # stream's next read waits for the peer, which lets the consumer run;
                        # forced turns there only cost CPU and delay this stream under load.
                        next_pause = now + _PAUSE_EVERY_SECONDS
                        for _ in range(_FIRST_TOKEN_YIELDS if first else 1):
                            await asyncio.sleep(0)
                if decoder.done:
                    await _adrain(body)
                    break
        except asyncio.CancelledError as exc:
            if watchdog.caused_cancellation():
                raise watchdog.timed_out(chunks, self.model_name) from exc
            raise
        except TRANSPORT_ERRORS as exc:
            raise as_openai_error(exc, url) from exc
        finally:
            watchdog.close()
            body.close()

    # ------------------------------------------------------------------ sync shell
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Sync twin of :meth:`_astream` (no ``stream_chunk_timeout``, as in ``ChatOpenAI``)."""
        request = None
        if not self._use_responses_api({**kwargs, **self.model_kwargs}):
            request = self.lean_request(messages, stop=stop, **dict(kwargs))
        if request is None:
            yield from super()._stream(messages, stop, run_manager, **kwargs)
            return
        try:
            yield from self._stream_lean(request, run_manager)
        except openai.BadRequestError as exc:
            lco.handle_openai_bad_request(exc)
        except openai.APIError as exc:
            lco.handle_openai_api_error(exc)

    def _stream_lean(
        self, lean: LeanRequest, run_manager: CallbackManagerForLLMRun | None
    ) -> Iterator[ChatGenerationChunk]:
        client = self._sync_http()
        request = client.build_request(
            "POST", lean.url, content=lean.body, headers=lean.headers, params=lean.params,
            timeout=lean.timeout,
        )  # fmt: skip
        try:
            response = client.send(request, stream=True)
        except _TIMEOUTS as exc:
            raise openai.APITimeoutError(request=request) from exc
        except Exception as exc:
            raise openai.APIConnectionError(request=request) from exc
        try:
            if response.status_code >= 400:
                response.read()
                raise self._status_error(self.root_client, response)
            decoder = SseDecoder()
            converter = _ChunkConverter(self, request)
            try:
                for data in response.iter_bytes():
                    for payload in decoder.feed_raw(data):
                        generation = converter.convert(decode_payload(payload))
                        if generation is None:
                            continue
                        if run_manager is not None:
                            run_manager.on_llm_new_token(
                                generation.text,
                                chunk=generation,
                                logprobs=converter.logprobs(generation),
                            )
                        yield generation
                    if decoder.done:
                        break
            except _TIMEOUTS as exc:
                raise openai.APITimeoutError(request=request) from exc
            except _REQUEST_ERRORS as exc:
                raise openai.APIConnectionError(request=request) from exc
        finally:
            response.close()
