"""aiohttp's private names used by the lean transport (guarded; see :mod:`._upstream`).

- ``StreamReader._buffer``: the bytes received but not read yet (a slot of aiohttp's reader);
  used to hand out what arrived before a connection broke and to see whether a burst is
  buffered. Without it the lean transport is off.
- ``BaseConnector._close``: closes a connector whose loop is gone without awaiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces

__all__ = ["bind", "close_connector_now", "pending_bytes"]

_LIB = "aiohttp"

PIECES: dict[str, Piece] = {
    "connector_close": Piece(_LIB, "aiohttp.connector", "BaseConnector._close", ("self",)),
}

connector_close: Any = None


def _check_buffer_slot() -> Missing | None:
    import aiohttp

    reader = aiohttp.StreamReader
    slots = getattr(reader, "__slots__", ())
    # a slot (aiohttp >= 3.11) or an attribute its constructor sets (3.10)
    init_names = getattr(getattr(reader.__init__, "__code__", None), "co_names", ())
    if "_buffer" in slots or "_buffer" in init_names:
        return None
    return Missing(Piece(_LIB, "aiohttp", "StreamReader._buffer"), "is missing")


def pending_bytes(content: Any) -> Sequence[bytes]:
    """The bytes aiohttp received for ``content`` that nobody has read yet."""
    return getattr(content, "_buffer", None) or ()


def close_connector_now(connector: Any) -> None:
    """Mark a connector of a closed loop closed (nothing left to await)."""
    if connector_close is not None:
        connector_close(connector)


def bind() -> list[Missing]:
    """Resolve every piece into this module's names."""
    return bind_pieces(globals(), PIECES, (_check_buffer_slot,))


REGISTRY.register(bind)
bind_pieces(globals(), PIECES)
