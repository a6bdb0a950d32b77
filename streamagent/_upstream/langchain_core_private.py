"""langchain-core's private names used by the fast path (guarded; see :mod:`._upstream`).

``streamagent.llm.lean.astream`` is a copy of ``BaseChatModel.astream`` with compact chunk
bookkeeping. It is used only while the installed ``BaseChatModel.astream`` is one of the
versions it was compared with (:data:`KNOWN_ASTREAM_SOURCES`, SHA-256 of its source): a new
``astream`` turns the compact path off rather than running an outdated copy.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces, resolve

__all__ = ["KNOWN_ASTREAM_SOURCES", "bind", "wants_protocol_events"]

_LIB = "langchain-core"
_UTILS = "langchain_core.language_models._utils"
_CHAT = "langchain_core.language_models.chat_models"

PIECES: dict[str, Piece] = {
    "filter_invocation_params_for_tracing": Piece(
        _LIB, _UTILS, "_filter_invocation_params_for_tracing"
    ),
    "normalize_messages": Piece(_LIB, _UTILS, "_normalize_messages", ("messages",)),
    "update_message_content_to_blocks": Piece(_LIB, _UTILS, "_update_message_content_to_blocks"),
    "format_for_tracing": Piece(_LIB, _CHAT, "_format_for_tracing", ("messages",)),
    "format_ls_structured_output": Piece(_LIB, _CHAT, "_format_ls_structured_output"),
    "gen_info_and_msg_metadata": Piece(_LIB, _CHAT, "_gen_info_and_msg_metadata"),
    "generate_response_from_error": Piece(_LIB, _CHAT, "_generate_response_from_error"),
    "convert_input": Piece(_LIB, _CHAT, "BaseChatModel._convert_input", ("self", "model_input")),
    "get_invocation_params": Piece(_LIB, _CHAT, "BaseChatModel._get_invocation_params"),
    "get_ls_params_with_defaults": Piece(_LIB, _CHAT, "BaseChatModel._get_ls_params_with_defaults"),
    "serialized": Piece(_LIB, _CHAT, "BaseChatModel._serialized"),
    "chat_astream": Piece(_LIB, _CHAT, "BaseChatModel._astream"),
    "should_stream": Piece(_LIB, _CHAT, "BaseChatModel._should_stream", ("self",)),
    "TextAccessor": Piece(_LIB, "langchain_core.messages.base", "TextAccessor"),
    "LC_ID_PREFIX": Piece(_LIB, "langchain_core.utils.utils", "LC_ID_PREFIX"),
}

#: SHA-256 of ``inspect.getsource(BaseChatModel.astream)`` of the langchain-core releases the
#: compact copy was checked against (1.7.2 … 1.8.3 share one).
KNOWN_ASTREAM_SOURCES = frozenset(
    {"1cc95f1b1b80689f"},
)

filter_invocation_params_for_tracing: Any = None
normalize_messages: Any = None
update_message_content_to_blocks: Any = None
format_for_tracing: Any = None
format_ls_structured_output: Any = None
gen_info_and_msg_metadata: Any = None
generate_response_from_error: Any = None
convert_input: Any = None
get_invocation_params: Any = None
get_ls_params_with_defaults: Any = None
serialized: Any = None
chat_astream: Any = None
should_stream: Any = None
TextAccessor: Any = None
LC_ID_PREFIX: Any = None


def astream_fingerprint() -> str | None:
    """The first 16 hex digits of the SHA-256 of ``BaseChatModel.astream``'s source."""
    from langchain_core.language_models import BaseChatModel

    try:
        source = inspect.getsource(BaseChatModel.astream)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _check_astream() -> Missing | None:
    fingerprint = astream_fingerprint()
    if fingerprint in KNOWN_ASTREAM_SOURCES:
        return None
    piece = Piece(_LIB, _CHAT, "BaseChatModel.astream")
    return Missing(piece, f"has changed (source fingerprint {fingerprint}, not a known one)")


def _check_callback_configure() -> Missing | None:
    from langchain_core.callbacks import AsyncCallbackManager

    params = inspect.signature(AsyncCallbackManager.configure).parameters
    if "langsmith_inheritable_metadata" in params:
        return None
    piece = Piece(_LIB, "langchain_core.callbacks", "AsyncCallbackManager.configure")
    return Missing(piece, "has changed (no langsmith_inheritable_metadata parameter)")


def bind() -> list[Missing]:
    """Resolve every piece into this module's names."""
    return bind_pieces(globals(), PIECES, (_check_astream, _check_callback_configure))


#: Not a fast-path piece (its absence only means the installed langchain-core has no v3
#: streaming): the marker class of callback handlers that consume protocol events — LangGraph's
#: ``astream_events(version="v3")`` attaches one.
_V2_HANDLER = resolve(
    Piece(_LIB, "langchain_core.tracers._streaming", "_V2StreamingCallbackHandler")
)
V2_STREAMING_HANDLER: Any = None if isinstance(_V2_HANDLER, Missing) else _V2_HANDLER


def wants_protocol_events(callbacks: Any) -> bool:
    """Whether a run's callbacks ask chat models for protocol (v3) stream events."""
    handlers = callbacks if isinstance(callbacks, list) else getattr(callbacks, "handlers", None)
    if V2_STREAMING_HANDLER is None or not handlers:
        return False
    return any(isinstance(h, V2_STREAMING_HANDLER) for h in handlers)


REGISTRY.register(bind)
bind_pieces(globals(), PIECES)  # names only: the source checks read files, so they run lazily
