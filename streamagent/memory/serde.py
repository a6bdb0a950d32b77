"""Strict checkpoint serialization: LangGraph's serializer that refuses unknown types.

LangGraph's :class:`~langgraph.checkpoint.serde.jsonplus.JsonPlusSerializer` in strict mode
(``allowed_msgpack_modules=None``) only rebuilds a built-in allowlist of safe types (datetime,
Decimal, UUID, LangChain messages, LangGraph ``Send``/``Interrupt``/``Command``...) plus the
types LangGraph adds for the compiled graph's state schema (``with_allowlist``). For any other
type it logs a warning and returns the raw payload. :class:`StrictSerializer` turns that into
an error instead: data read from Redis never silently changes type, and never runs the import
of an unexpected class.

Example:
    >>> from decimal import Decimal
    >>> from langchain_core.messages import HumanMessage
    >>> serde = StrictSerializer()
    >>> serde.loads_typed(serde.dumps_typed([HumanMessage("hi", id="1"), Decimal("0.5")]))
    [HumanMessage(content='hi', additional_kwargs={}, response_metadata={}, id='1'), Decimal('0.5')]
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable
from typing import Any

from langgraph.checkpoint.serde.event_hooks import SerdeEvent, register_serde_event_listener
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from streamagent.errors import AgentRunError

__all__ = ["StrictSerializer", "UnsafeDeserializationError"]

_blocked: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "streamagent_serde_blocked", default=None
)
_listener_lock = threading.Lock()
_listener_registered = False


class UnsafeDeserializationError(AgentRunError):
    """Checkpoint data holds a type that is not on the deserialization allowlist."""


def _on_serde_event(event: SerdeEvent) -> None:
    blocked = _blocked.get()
    if blocked is None or not event["kind"].endswith("blocked"):
        return
    name = f"{event['module']}.{event['name']}"
    if "method" in event:
        name += f".{event['method']}"
    blocked.append(name)


def _ensure_listener() -> None:
    global _listener_registered  # noqa: PLW0603 - one process-wide listener
    with _listener_lock:
        if not _listener_registered:
            register_serde_event_listener(_on_serde_event)
            _listener_registered = True


class StrictSerializer(JsonPlusSerializer):
    """``JsonPlusSerializer`` in strict mode that raises on types outside the allowlist.

    ``allowed_msgpack_modules`` adds ``(module, name)`` pairs (or classes) to LangGraph's safe
    list; LangGraph itself adds the state schema's types when a graph is compiled.
    """

    def __init__(self, *, allowed_msgpack_modules: Iterable[tuple[str, ...] | type] = ()) -> None:
        extra = tuple(allowed_msgpack_modules)
        super().__init__(allowed_msgpack_modules=extra or None)
        _ensure_listener()

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Deserialize, raising :class:`UnsafeDeserializationError` for refused types."""
        token = _blocked.set([])
        try:
            value = super().loads_typed(data)
            blocked = _blocked.get() or []
        finally:
            _blocked.reset(token)
        if blocked:
            names = ", ".join(sorted(set(blocked)))
            raise UnsafeDeserializationError(
                f"refused to deserialize {names} from a checkpoint: not on the allowlist. "
                "If the type is yours and trusted, pass "
                "serde=StrictSerializer(allowed_msgpack_modules=[(module, name)]) to the saver"
            )
        return value
