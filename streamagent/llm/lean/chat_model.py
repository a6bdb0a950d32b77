"""``LeanChatOpenAI``: ``ChatOpenAI`` that streams Chat Completions without the SDK's typed chunks.

About three quarters of the ``openai`` SDK's client time per streamed chunk goes into building
typed ``ChatCompletionChunk`` objects that ``ChatOpenAI`` immediately turns back into dicts
(``chunk.model_dump()``). ``LeanChatOpenAI`` keeps everything else of ``ChatOpenAI`` and
changes only the transport of a streamed Chat Completions call:

- the request body is ``ChatOpenAI``'s own (``_get_request_payload``), sent as JSON with the
  SDK client's own headers (``Authorization``, organization/project, default headers) to
  ``{base_url}chat/completions`` — the URL the SDK builds — with the SDK client's timeouts
  (:mod:`~streamagent.llm.lean.request`), over a pooled ``aiohttp`` session per event loop for
  async streams (:mod:`~streamagent.llm.lean.transport`: a third of the CPU per socket read of
  ``httpx2``) and a pooled ``httpx2`` client for sync ones;
- the SSE body is decoded by :class:`~streamagent.llm.lean.sse.SseDecoder` (``orjson``, each
  event parsed when the stream reaches it: :mod:`~streamagent.llm.lean.reader`) and each chunk
  dict goes through ``ChatOpenAI``'s own ``_convert_chunk_to_generation_chunk``
  (:mod:`~streamagent.llm.lean.convert`) — the same message chunks, ``response_metadata``
  (``finish_reason``, ``model_name``, ``system_fingerprint``), ``usage_metadata`` and
  ``on_llm_new_token`` callbacks — except a plain text delta, whose identical objects
  :mod:`~streamagent.llm.lean.text_chunks` builds without validation;
- failures become the exceptions the SDK raises (``openai.APIStatusError`` subclasses built
  from the response, ``APITimeoutError``, ``APIConnectionError``, ``json.JSONDecodeError`` for
  a malformed chunk, ``APIError`` for an in-stream error event), wrapped by ``ChatOpenAI``'s own
  handlers, so :func:`streamagent.llm.retry.classify_error` sees exactly what it sees today;
- async streams honour ``stream_chunk_timeout`` (time between parsed chunks) with one timer
  per call instead of a task per chunk (:mod:`~streamagent.llm.lean.watchdog`).

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

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import httpx2
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from streamagent._upstream import fast_path_available
from streamagent._upstream import langchain_openai_private as lco
from streamagent._upstream import openai_private as oai
from streamagent.llm.lean.astream import astream_compact
from streamagent.llm.lean.convert import ChunkConverter
from streamagent.llm.lean.eligibility import payload_is_lean, unsupported_fields
from streamagent.llm.lean.reader import SYNC_TIMEOUTS, aread_chunks, read_chunks
from streamagent.llm.lean.request import LeanRequest, request_from_payload
from streamagent.llm.lean.transport import (
    SHARED_SESSIONS,
    TRANSPORT_ERRORS,
    AioSessions,
    as_openai_error,
    client_timeout,
    env_proxy_for,
    status_response,
)

__all__ = ["LeanChatOpenAI", "LeanRequest"]

logger = logging.getLogger(__name__)

#: The sync client's pool: the openai SDK's own limits (httpx's default of 100 connections
#: would make stream 101 wait for a connection until it times out).
_CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100)


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
        """Whether this model's calls may take the lean transport
        (:mod:`~streamagent.llm.lean.eligibility`).

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
        unsupported = unsupported_fields(self)  # a custom HTTP client or proxy among them
        if unsupported:
            logger.debug("lean transport off for this model: options %s", unsupported)
            return False
        client = self.root_async_client
        return (
            type(client) is openai.AsyncOpenAI  # not Azure or another SDK subclass
            and not self.include_response_headers
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
        client = self.root_async_client
        return request_from_payload(
            payload,
            url=self.lean_url(),
            headers=self._headers(),
            custom_query=oai.custom_query(client),
            default_timeout=client.timeout,
        )

    def _lean_request_of_call(
        self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]
    ) -> LeanRequest | None:
        """:meth:`lean_request` of a ``_stream`` / ``_astream`` call, unless it is for the
        Responses API."""
        if self._use_responses_api({**kwargs, **self.model_kwargs}):
            return None
        return self.lean_request(messages, stop=stop, **dict(kwargs))

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
        request = self._lean_request_of_call(messages, stop, kwargs)
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
            chunks = aread_chunks(
                response,
                ChunkConverter(self, None, lean.url),
                url=lean.url,
                run_manager=run_manager,
                read_timeout_seconds=lean.timeout.read,
                chunk_timeout_seconds=self.stream_chunk_timeout,
                model_name=self.model_name,
            )
            async for chunk in chunks:
                yield chunk
        finally:
            response.release()  # back to the pool when the body was read to its end, else closed

    # ------------------------------------------------------------------ sync shell
    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """Sync twin of :meth:`_astream` (no ``stream_chunk_timeout``, as in ``ChatOpenAI``)."""
        request = self._lean_request_of_call(messages, stop, kwargs)
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
        except SYNC_TIMEOUTS as exc:
            raise openai.APITimeoutError(request=request) from exc
        except Exception as exc:
            raise openai.APIConnectionError(request=request) from exc
        try:
            if response.status_code >= 400:
                response.read()
                raise self._status_error(self.root_client, response)
            converter = ChunkConverter(self, request)
            yield from read_chunks(response, converter, request=request, run_manager=run_manager)
        finally:
            response.close()
