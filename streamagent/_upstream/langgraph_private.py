"""langgraph's private names used by the token sink (guarded; see :mod:`._upstream`).

- ``StreamMessagesHandler``: LangGraph's ``messages``-mode callback handler, left out of a
  model call whose tokens go to the sink (without it, the ``nostream`` tag alone suffices);
- ``PUSH``: the ``langgraph_path`` marker of a pushed task (``@task``), which the sink needs
  to give tokens the namespace LangGraph's ``messages`` mode gives them.
"""

from __future__ import annotations

from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces

__all__ = ["PUSH_MARKER", "bind"]

_LIB = "langgraph"

#: The value of ``langgraph._internal._constants.PUSH`` the sink's namespace logic assumes.
PUSH_MARKER = "__pregel_push"

PIECES: dict[str, Piece] = {
    "StreamMessagesHandler": Piece(_LIB, "langgraph.pregel._messages", "StreamMessagesHandler"),
    "PUSH": Piece(_LIB, "langgraph._internal._constants", "PUSH"),
}

StreamMessagesHandler: Any = None
PUSH: Any = None


def _check_push() -> Missing | None:
    if PUSH == PUSH_MARKER:
        return None
    piece = PIECES["PUSH"]
    return Missing(piece, f"has changed (expected {PUSH_MARKER!r}, found {PUSH!r})")


def bind() -> list[Missing]:
    """Resolve every piece into this module's names."""
    return bind_pieces(globals(), PIECES, (_check_push,))


REGISTRY.register(bind)
bind_pieces(globals(), PIECES)
