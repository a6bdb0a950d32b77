"""Commands returned by tools: checked and combined as ``ToolNode`` does."""

from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage
from langgraph.types import Command, Send

from streamagent.nodes._commands import ToolResultError, combine, has_command, normalize_result

CALL = {"name": "t", "args": {}, "id": "c1", "type": "tool_call"}


def test_a_command_for_the_agent_must_answer_its_call() -> None:
    with pytest.raises(ToolResultError, match="ToolMessage"):
        normalize_result(Command(update={"x": 1}), CALL)  # type: ignore[arg-type]


def test_a_parent_command_needs_no_tool_message() -> None:
    command = Command(graph=Command.PARENT, goto="other", update={"x": 1})
    assert normalize_result(command, CALL) == command  # type: ignore[arg-type]


def test_a_list_must_answer_the_call_exactly_once() -> None:
    answer = ToolMessage("ok", tool_call_id="c1")
    with pytest.raises(ToolResultError, match="2 messages"):
        normalize_result([answer, Command(update={"messages": [answer]})], CALL)  # type: ignore[arg-type]
    checked = normalize_result([Command(update={"x": 1}), answer], CALL)  # type: ignore[arg-type]
    assert isinstance(checked, list) and checked[1].name == "t"


def test_parent_sends_merge_into_one_command_and_order_is_kept() -> None:
    first = Command(graph=Command.PARENT, goto=[Send("a", {"n": 1})])
    second = Command(graph=Command.PARENT, goto=[Send("b", {"n": 2})])
    plain = ToolMessage("plain", tool_call_id="c2", name="t")
    update = Command(update={"messages": [ToolMessage("u", tool_call_id="c3")]})
    combined = combine([first, plain, update, second])
    assert combined[0] == {"messages": [plain]}
    assert combined[1] is update
    assert combined[2].graph == Command.PARENT
    assert [s.node for s in combined[2].goto] == ["a", "b"]
    assert has_command([plain, [plain, update]]) and not has_command([plain])
