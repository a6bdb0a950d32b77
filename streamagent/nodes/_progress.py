"""Tool results as each call finishes: the router's ``custom`` stream events.

The router writes one event per finished call, in completion order, to LangGraph's ``custom``
stream (``{"streamagent": "tool_result", "agent": ..., "tool_call_id": ..., "name": ...,
"content": ..., "status": ...}``); :func:`streamagent.astream_chunks` turns it into a
``tool_result`` chunk at once, and skips the same result when the node's state update (which
keeps the calls' order) arrives.

Example:
    >>> from langchain_core.messages import ToolMessage
    >>> event = result_event("agent", ToolMessage("ok", tool_call_id="c1", name="t"))
    >>> event["streamagent"], event["tool_call_id"], event["status"]
    ('tool_result', 'c1', 'success')
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import ToolMessage, convert_to_messages
from langgraph.types import Command

from streamagent.streaming.protocol import EVENT_KEY, TOOL_RESULT_EVENT

__all__ = ["answering_message", "result_event"]


def answering_message(output: Any, call_id: str) -> ToolMessage | None:
    """The ToolMessage answering ``call_id`` in a tool's output (message, Command or list)."""
    items = output if isinstance(output, list) else [output]
    for item in items:
        if isinstance(item, ToolMessage) and item.tool_call_id == call_id:
            return item
        if isinstance(item, Command) and isinstance(item.update, dict):
            for message in convert_to_messages(item.update.get("messages") or []):
                if isinstance(message, ToolMessage) and message.tool_call_id == call_id:
                    return message
    return None


def result_event(agent: str, message: ToolMessage) -> dict[str, Any]:
    """The ``custom`` stream event reporting one finished call."""
    return {
        EVENT_KEY: TOOL_RESULT_EVENT,
        "agent": agent,
        "tool_call_id": message.tool_call_id,
        "name": message.name,
        "content": message.text,
        "status": message.status,
    }
