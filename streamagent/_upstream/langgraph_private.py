"""langgraph's private names used by the token sink (guarded; see :mod:`._upstream`).

- ``StreamMessagesHandler``: LangGraph's ``messages``-mode callback handler, left out of a
  model call whose tokens go to the sink (without it, the ``nostream`` tag alone suffices);
- ``PUSH``: the ``langgraph_path`` marker of a pushed task (``@task``), which the sink needs
  to give tokens the namespace LangGraph's ``messages`` mode gives them.
"""

from __future__ import annotations

from typing import Any

from streamagent._upstream import REGISTRY, Missing, Piece, bind_pieces, optional

__all__ = [
    "PUSH_MARKER",
    "SAFE_MSGPACK_METHODS",
    "SAFE_MSGPACK_TYPES",
    "DeltaSnapshot",
    "bind",
]

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


# ---------------------------------------------------------------- outside the fast path
# The Redis saver's strict deserialization and its DeltaChannel support use these. Missing,
# the saver refuses every msgpack extension LangGraph does not list as safe (loud, never a
# raw value) and DeltaChannel snapshots are not recognised (stored as ordinary values).


class _NoDeltaSnapshot:
    """Stands in for ``_DeltaSnapshot`` in a langgraph without it (nothing is one)."""

    def __init__(self, value: Any) -> None:
        self.value = value


_SERDE = "langgraph-checkpoint"
DeltaSnapshot: Any = optional(
    Piece(_SERDE, "langgraph.checkpoint.serde.types", "_DeltaSnapshot"), _NoDeltaSnapshot
)
SAFE_MSGPACK_METHODS: Any = optional(
    Piece(_SERDE, "langgraph.checkpoint.serde._msgpack", "SAFE_MSGPACK_METHODS"), frozenset()
)
SAFE_MSGPACK_TYPES: Any = optional(
    Piece(_SERDE, "langgraph.checkpoint.serde._msgpack", "SAFE_MSGPACK_TYPES"), frozenset()
)
