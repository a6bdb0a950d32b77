"""Decoded chunk dicts of a lean stream → ``ChatOpenAI``'s generation chunks (pure, no I/O).

:class:`ChunkConverter` is ``ChatOpenAI._astream``'s per-chunk step for one stream: an error
event raises the ``openai.APIError`` the SDK raises; a plain text delta is built directly by
:class:`~streamagent.llm.lean.text_chunks.TextChunkFactory` (identical objects, no validation)
unless the model's conversion is customised or v1 output is asked for; every other chunk goes
through ``ChatOpenAI._convert_chunk_to_generation_chunk``.

Example:
    >>> from pydantic import SecretStr
    >>> from langchain_openai import ChatOpenAI
    >>> converter = ChunkConverter(ChatOpenAI(model="gpt-4o", api_key=SecretStr("sk")), None)
    >>> delta = {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    >>> converter.convert(delta).text
    'hi'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
import openai
from langchain_core.messages import AIMessageChunk, BaseMessageChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_openai import ChatOpenAI

from streamagent.llm.lean.text_chunks import TextChunkFactory

__all__ = ["ChunkConverter"]

_TEXT_CHUNKS = TextChunkFactory()


class ChunkConverter:
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
        # no base generation info: the lean transport never reports response headers
        generation = self._convert(chunk, self._default_class, {})
        if generation is not None:
            self._default_class = generation.message.__class__
        return generation

    @staticmethod
    def logprobs(generation: ChatGenerationChunk) -> Any:
        info = generation.generation_info
        return info.get("logprobs") if info else None
