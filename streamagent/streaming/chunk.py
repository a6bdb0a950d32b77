"""The typed events of an agent run (:class:`StreamChunk`) and the checked input of a turn.

Example:
    >>> StreamChunk(type="content", content="Hi").to_dict()
    {'type': 'content', 'content': 'Hi'}
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from langchain_core.messages import BaseMessage, convert_to_messages

from streamagent.errors import InvalidInputError
from streamagent.llm.structured import structured_json
from streamagent.streaming.input_policy import check_messages

__all__ = ["ChunkType", "StreamChunk", "prepare_input"]

ChunkType = Literal[
    "content",
    "reasoning",
    "tool_call_delta",
    "tool_call",
    "tool_result",
    "retry",
    "interrupt",
    "structured",
    "done",
    "error",
]


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One typed event of an agent run. Only the fields of its ``type`` are set."""

    type: ChunkType
    content: str | None = None
    tool_call: dict[str, Any] | None = None
    tool_result: dict[str, Any] | None = None
    retry: dict[str, Any] | None = None
    interrupt: list[dict[str, Any]] | None = None
    usage: dict[str, int] | None = None
    cost_usd: Decimal | None = None
    latency_seconds: float | None = None
    time_to_first_token_seconds: float | None = None
    error: dict[str, Any] | None = None
    agent: str | None = None
    namespace: tuple[str, ...] = field(default=())
    #: ``structured`` only: the validated ``response_format`` value
    structured: Any = None
    #: ``done`` only: per agent ``{"usage": {...}, "cost_usd": Decimal | None}``
    agents: dict[str, dict[str, Any]] | None = None
    #: ``done`` only: True when some call's usage is tiktoken's estimate (the server sent none)
    usage_estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict without unset fields (``cost_usd`` as a string, exact)."""
        out: dict[str, Any] = {"type": self.type}
        for key in (
            "content",
            "tool_call",
            "tool_result",
            "retry",
            "interrupt",
            "usage",
            "latency_seconds",
            "time_to_first_token_seconds",
            "error",
            "agent",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.type == "structured":
            out["structured"] = structured_json(self.structured)
        if self.type == "done":
            out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
            if self.usage_estimated:
                out["usage_estimated"] = True
            if self.agents is not None:
                out["agents"] = {
                    name: {
                        "usage": item["usage"],
                        "cost_usd": None if item["cost_usd"] is None else str(item["cost_usd"]),
                    }
                    for name, item in self.agents.items()
                }
        if self.namespace:
            out["namespace"] = list(self.namespace)
        return out


def prepare_input(messages: Any, *, allow_privileged_roles: bool = False) -> list[BaseMessage]:
    """Validate user input: a non-empty list of messages, dicts, tuples or strings, under the
    input policy of :mod:`streamagent.streaming.input_policy` (privileged roles only when allowed).

    >>> [m.type for m in prepare_input([{"role": "user", "content": "hi"}])]
    ['human']
    """
    if isinstance(messages, str | BaseMessage | Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or len(messages) == 0:
        raise InvalidInputError("messages must be a non-empty list of messages")
    try:
        converted = convert_to_messages(messages)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        raise InvalidInputError(f"invalid message: {exc}") from exc
    check_messages(converted, allow_privileged_roles=allow_privileged_roles)
    for message in converted:
        if message.id is None:
            message.id = str(uuid.uuid4())
    return converted
