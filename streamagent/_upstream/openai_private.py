"""The openai SDK's private names used by the fast path (guarded; see :mod:`._upstream`).

``_custom_query`` is an instance attribute of the SDK's clients (set in ``__init__``), so it is
read through :func:`custom_query`, which reports ``None`` when a client lacks it (the lean
path is then not taken for that client).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces

__all__ = ["bind", "custom_query", "make_status_error"]

_LIB = "openai"

PIECES: dict[str, Piece] = {
    "async_make_status_error": Piece(
        _LIB, "openai", "AsyncOpenAI._make_status_error_from_response", ("self", "response")
    ),
    "sync_make_status_error": Piece(
        _LIB, "openai", "OpenAI._make_status_error_from_response", ("self", "response")
    ),
    "auth_headers": Piece(_LIB, "openai", "AsyncOpenAI.auth_headers"),
}

async_make_status_error: Any = None
sync_make_status_error: Any = None
auth_headers: Any = None

_NO_QUERY = object()


def custom_query(client: Any) -> Mapping[str, Any] | None:
    """The client's default query parameters, or ``None`` when the SDK no longer keeps them
    where the fast path looks (then it must not build the URL itself)."""
    value = getattr(client, "_custom_query", _NO_QUERY)
    if value is _NO_QUERY or not isinstance(value, Mapping):
        return None
    return value


def make_status_error(client: Any, response: Any) -> Any:
    """The SDK's ``APIStatusError`` subclass for an error response (as the SDK raises it)."""
    return client._make_status_error_from_response(response)


def bind() -> list[Missing]:
    """Resolve every piece into this module's names."""
    return bind_pieces(globals(), PIECES)


REGISTRY.register(bind)
bind()
