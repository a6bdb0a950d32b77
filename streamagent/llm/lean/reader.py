"""The read loops of a lean stream: response body → SSE events → generation chunks.

One loop per shell, each the whole per-chunk hot path (no call per chunk beyond decoding,
converting, the ``on_llm_new_token`` callback and the yield):

- :func:`aread_chunks` (aiohttp): parses each event only when the consumer reaches it (a
  backlog stays bytes), honours ``stream_chunk_timeout`` with a
  :class:`~streamagent.llm.lean.watchdog.ChunkWatchdog`, hands the event loop over during a
  burst of buffered chunks so a consumer in another task sees them at once, and after
  ``[DONE]`` drains the body so the connection goes back to the pool;
- :func:`read_chunks` (httpx2): the sync twin, without ``stream_chunk_timeout`` (as in
  ``ChatOpenAI``).

Transport failures become the SDK's exceptions (``APITimeoutError``, ``APIConnectionError``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx2
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.outputs import ChatGenerationChunk

from streamagent.llm.lean.convert import ChunkConverter
from streamagent.llm.lean.sse import SseDecoder, decode_payload
from streamagent.llm.lean.transport import TRANSPORT_ERRORS, BodyReader, as_openai_error
from streamagent.llm.lean.watchdog import ChunkWatchdog

__all__ = ["SYNC_REQUEST_ERRORS", "SYNC_TIMEOUTS", "adrain", "aread_chunks", "read_chunks"]

logger = logging.getLogger(__name__)

#: What the SDK's sync stream reader maps to ``APITimeoutError`` (async streams:
#: :data:`~streamagent.llm.lean.transport.TRANSPORT_ERRORS`).
SYNC_TIMEOUTS: tuple[type[BaseException], ...] = (httpx2.TimeoutException,)
#: What it maps to ``APIConnectionError``.
SYNC_REQUEST_ERRORS: tuple[type[BaseException], ...] = (httpx2.RequestError, ssl.SSLError)
# how often (at most) a stream of already-buffered chunks lets the event loop run
_PAUSE_EVERY_SECONDS = 0.001
#: Loop turns given away after the first token. A consumer in another task needs several to
#: see it (LangGraph's stream: callback -> call_soon_threadsafe -> queue waiter -> asyncio.wait
#: -> astream, 4 turns); with one, it waited for the next pause, ~1 ms per hop, when a burst of
#: chunks was already buffered.
_FIRST_TOKEN_YIELDS = 8
# how long to wait for the end of the body after ``[DONE]`` (see ``adrain``)
_DRAIN_SECONDS = 0.25


async def adrain(body: BodyReader) -> None:
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


async def aread_chunks(
    response: aiohttp.ClientResponse,
    converter: ChunkConverter,
    *,
    url: str,
    run_manager: AsyncCallbackManagerForLLMRun | None,
    read_timeout_seconds: float | None = None,
    chunk_timeout_seconds: float | None = None,
    model_name: str | None = None,
) -> AsyncIterator[ChatGenerationChunk]:
    """The generation chunks of an async streamed ``response`` (status already checked).

    ``chunk_timeout_seconds`` is ``stream_chunk_timeout``; ``model_name`` names the model in
    its error.
    """
    decoder = SseDecoder()
    watchdog = ChunkWatchdog(chunk_timeout_seconds)
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
                if (first or now >= next_pause) and (index + 1 < len(payloads) or body.buffered()):
                    # A burst (more chunks at hand): hand the loop over, so a consumer in
                    # another task (LangGraph's stream) sees the first token at once — it
                    # needs several turns — and later ones at most ~1 ms late. A paced
                    # stream's next read waits for the peer, which lets the consumer run;
                    # forced turns there only cost CPU and delay this stream under load.
                    next_pause = now + _PAUSE_EVERY_SECONDS
                    for _ in range(_FIRST_TOKEN_YIELDS if first else 1):
                        await asyncio.sleep(0)
            if decoder.done:
                await adrain(body)
                break
    except asyncio.CancelledError as exc:
        if watchdog.caused_cancellation():
            raise watchdog.timed_out(chunks, model_name) from exc
        raise
    except TRANSPORT_ERRORS as exc:
        raise as_openai_error(exc, url) from exc
    finally:
        watchdog.close()
        body.close()


def read_chunks(
    response: httpx2.Response,
    converter: ChunkConverter,
    *,
    request: httpx2.Request,
    run_manager: CallbackManagerForLLMRun | None,
) -> Iterator[ChatGenerationChunk]:
    """The generation chunks of a sync streamed ``response`` (status already checked)."""
    decoder = SseDecoder()
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
    except SYNC_TIMEOUTS as exc:
        raise openai.APITimeoutError(request=request) from exc
    except SYNC_REQUEST_ERRORS as exc:
        raise openai.APIConnectionError(request=request) from exc
