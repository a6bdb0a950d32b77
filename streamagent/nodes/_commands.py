"""``Command`` results of tools, handled as ``langgraph.prebuilt.ToolNode`` handles them.

A tool may return

* a ``Command(update={...})``: applied to the agent's state; when it is meant for the agent's
  own graph (``graph=None``) its ``update["messages"]`` must hold the ``ToolMessage`` answering
  the call (every call is answered exactly once);
* a ``Command(goto=..., graph=Command.PARENT, update=...)``: a hand-off, applied by the graph
  that contains the agent (LangGraph raises it out of the agent's subgraph);
* a list of ``Command`` / ``ToolMessage`` with exactly one ``ToolMessage`` for the call.

The router's node output is then what ``ToolNode`` returns: ``{"messages": [...]}`` when no
tool returned a Command, else a list of updates and Commands in the calls' order, with every
parent ``Command`` whose ``goto`` is a list of ``Send`` merged into one.

Example:
    >>> from langchain_core.messages import ToolMessage
    >>> from langgraph.types import Command
    >>> call = {"name": "t", "args": {}, "id": "c1", "type": "tool_call"}
    >>> cmd = Command(update={"messages": [ToolMessage("ok", tool_call_id="c1")], "n": 1})
    >>> checked = normalize_result(cmd, call)
    >>> checked.update["messages"][0].name
    't'
    >>> combine([checked])[0].update["n"]
    1
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from dataclasses import replace
from typing import Any, TypeAlias, cast

from langchain_core.messages import RemoveMessage, ToolCall, ToolMessage, convert_to_messages
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from langgraph.types import Command, Send

__all__ = ["ToolOutput", "combine", "has_command", "is_command_result", "normalize_result"]

#: What one call produces once normalised.
ToolOutput: TypeAlias = ToolMessage | Command[Any] | list[ToolMessage | Command[Any]]

_MESSAGES = "messages"


class ToolResultError(ValueError):
    """A tool returned a Command or list that breaks the one-ToolMessage-per-call rule."""


def is_command_result(result: Any) -> bool:
    """True for a ``Command`` or a non-empty list of ``Command`` / ``ToolMessage``."""
    if isinstance(result, Command):
        return True
    return (
        isinstance(result, list)
        and bool(result)
        and all(isinstance(r, Command | ToolMessage) for r in result)
        and any(isinstance(r, Command) for r in result)
    )


def _answers(messages: Sequence[Any], call_id: str) -> int:
    return sum(1 for m in messages if isinstance(m, ToolMessage) and m.tool_call_id == call_id)


def _checked_command(command: Command[Any], call: ToolCall, *, terminator: bool) -> Command[Any]:
    if not isinstance(command.update, dict):
        if command.update is not None and command.graph is None:
            raise ToolResultError(
                f"tool {call['name']!r} returned a Command whose update is not a dict; use "
                "Command(update={'messages': [ToolMessage(..., tool_call_id=...)], ...})"
            )
        if terminator and command.graph is None:
            raise ToolResultError(_missing(call))
        return command
    checked = deepcopy(command)
    update = cast("dict[str, Any]", checked.update)
    messages = convert_to_messages(update.get(_MESSAGES, []))
    if _MESSAGES in update:
        update[_MESSAGES] = messages
    if messages == [RemoveMessage(id=REMOVE_ALL_MESSAGES)]:
        return checked
    for message in messages:
        if isinstance(message, ToolMessage) and message.tool_call_id == call.get("id"):
            message.name = call["name"]
    if terminator and checked.graph is None and not _answers(messages, call.get("id") or ""):
        raise ToolResultError(_missing(call))
    return checked


def _missing(call: ToolCall) -> str:
    return (
        f"tool {call['name']!r} returned a Command without a ToolMessage for its call "
        f"{call.get('id')!r}: every call needs one — return Command(update={{'messages': "
        "[ToolMessage('...', tool_call_id=tool_call_id)], ...}) (InjectedToolCallId gives the id)"
    )


def normalize_result(result: Any, call: ToolCall) -> ToolOutput:
    """Check a tool's ``Command`` (or list) result; raises ``ValueError`` when it is invalid."""
    if isinstance(result, Command):
        return _checked_command(result, call, terminator=True)
    items = cast("list[ToolMessage | Command[Any]]", result)
    call_id = call.get("id") or ""
    count = 0
    for item in items:
        if isinstance(item, ToolMessage):
            count += item.tool_call_id == call_id
        elif isinstance(item.update, dict):
            count += _answers(convert_to_messages(item.update.get(_MESSAGES, [])), call_id)
    if count != 1:
        raise ToolResultError(
            f"tool {call['name']!r} returned a list with {count} messages answering call "
            f"{call_id!r}; exactly one ToolMessage must answer it"
        )
    out: list[ToolMessage | Command[Any]] = []
    for item in items:
        if isinstance(item, Command):
            out.append(_checked_command(item, call, terminator=False))
        else:
            if item.tool_call_id == call_id:
                item.name = call["name"]
            out.append(item)
    return out


def has_command(outputs: Sequence[ToolOutput]) -> bool:
    """True when any output is (or holds) a ``Command``."""
    return any(
        isinstance(o, Command) or (isinstance(o, list) and any(isinstance(i, Command) for i in o))
        for o in outputs
    )


def combine(outputs: Sequence[ToolOutput]) -> list[Any]:
    """The node's output for outputs with Commands (in the calls' order), as ``ToolNode``."""
    flat: list[ToolMessage | Command[Any]] = []
    for output in outputs:
        flat.extend(output if isinstance(output, list) else [output])
    combined: list[Any] = []
    parent: Command[Any] | None = None
    for output in flat:
        if not isinstance(output, Command):
            combined.append({_MESSAGES: [output]})
        elif (
            output.graph is Command.PARENT
            and isinstance(output.goto, list)
            and all(isinstance(s, Send) for s in output.goto)
        ):
            if parent is None:
                parent = Command(graph=Command.PARENT, goto=output.goto)
            else:
                parent = replace(parent, goto=[*cast("list[Send]", parent.goto), *output.goto])
        else:
            combined.append(output)
    if parent is not None:
        combined.append(parent)
    return combined
