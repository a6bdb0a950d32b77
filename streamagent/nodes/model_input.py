"""The messages the model node sends: the prune node's view of the thread and the system prompt.

The prune node does not rewrite the thread under ``policy="view"``: it writes a
``context_view`` (the ids it kept, the tool outputs it shrank) that :func:`model_input`
applies. The configured system prompt goes first unless the thread has its own.

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> state = {
    ...     "messages": [HumanMessage("old", id="h1"), AIMessage("ok", id="a1"),
    ...                  HumanMessage("new", id="h2")],
    ...     "context_view": {"kept_ids": ["h2"], "shrunk": {}},
    ... }
    >>> [(m.type, m.content) for m in model_input(state, system_prompt="be brief")]
    [('system', 'be brief'), ('human', 'new')]
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage, ToolMessage

__all__ = ["model_input"]


def model_input(state: dict[str, Any], *, system_prompt: str | None) -> list[BaseMessage]:
    """The messages the model sees: the prune node's view of the thread + ``system_prompt``
    (a new list; shrunk tool outputs are copies, the thread's messages are not changed)."""
    messages: list[BaseMessage] = list(state.get("messages") or [])
    view = state.get("context_view") or {}
    kept = view.get("kept_ids")
    shrunk: dict[str, str] = view.get("shrunk") or {}
    if kept is not None:
        keep = set(kept)
        messages = [m for m in messages if m.id in keep]
    if shrunk:
        messages = [
            m.model_copy(update={"content": shrunk[m.id]})
            if isinstance(m, ToolMessage) and m.id in shrunk
            else m
            for m in messages
        ]
    if system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
        messages.insert(0, SystemMessage(content=system_prompt))
    return messages
