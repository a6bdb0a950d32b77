"""langchain-openai's private names used by the fast path (guarded).

See :mod:`streamagent._upstream`.
"""

from __future__ import annotations

from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces

__all__ = ["bind"]

_LIB = "langchain-openai"
_BASE = "langchain_openai.chat_models.base"

PIECES: dict[str, Piece] = {
    "StreamChunkTimeoutError": Piece(
        _LIB, "langchain_openai.chat_models._client_utils", "StreamChunkTimeoutError"
    ),
    "handle_openai_api_error": Piece(_LIB, _BASE, "_handle_openai_api_error"),
    "handle_openai_bad_request": Piece(_LIB, _BASE, "_handle_openai_bad_request"),
    "convert_chunk_to_generation_chunk": Piece(
        _LIB,
        _BASE,
        "BaseChatOpenAI._convert_chunk_to_generation_chunk",
        ("self", "chunk", "default_chunk_class", "base_generation_info"),
    ),
    "get_request_payload": Piece(
        _LIB, _BASE, "BaseChatOpenAI._get_request_payload", ("self", "input_")
    ),
    "use_responses_api": Piece(
        _LIB, _BASE, "BaseChatOpenAI._use_responses_api", ("self", "payload")
    ),
    "should_stream_usage": Piece(
        _LIB, _BASE, "BaseChatOpenAI._should_stream_usage", ("self", "stream_usage")
    ),
    "uses_gateway": Piece(_LIB, _BASE, "BaseChatOpenAI._uses_gateway"),
}

StreamChunkTimeoutError: Any = None
handle_openai_api_error: Any = None
handle_openai_bad_request: Any = None
convert_chunk_to_generation_chunk: Any = None
get_request_payload: Any = None
use_responses_api: Any = None
should_stream_usage: Any = None
uses_gateway: Any = None


def bind() -> list[Missing]:
    """Resolve every piece into this module's names."""
    return bind_pieces(globals(), PIECES)


REGISTRY.register(bind)
bind()
