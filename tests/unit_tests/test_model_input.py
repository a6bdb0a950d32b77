"""The messages the model node sends, alone: the prune node's view applied, the prompt first."""

from __future__ import annotations

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from streamagent.nodes.model_input import model_input


def test_model_input_applies_the_prune_view_and_the_system_prompt() -> None:
    thread = [
        HumanMessage("old", id="h1"),
        AIMessage("", id="a1", tool_calls=[{"name": "echo", "args": {}, "id": "c1"}]),
        ToolMessage("a very long output", tool_call_id="c1", id="t1"),
        HumanMessage("new", id="h2"),
    ]
    state = {
        "messages": thread,
        "context_view": {"kept_ids": ["a1", "t1", "h2"], "shrunk": {"t1": "…"}},
    }
    seen = model_input(state, system_prompt="be brief")
    assert [(m.type, m.content) for m in seen] == [
        ("system", "be brief"),
        ("ai", ""),
        ("tool", "…"),
        ("human", "new"),
    ]
    assert thread[2].content == "a very long output"  # the thread itself is not changed


def test_model_input_keeps_everything_without_a_view_and_a_thread_prompt_first() -> None:
    thread = [SystemMessage("the thread's own"), HumanMessage("hi")]
    assert model_input({"messages": thread}, system_prompt="configured") == thread
    assert model_input({}, system_prompt=None) == []


def test_model_input_with_an_empty_kept_list_sends_only_the_prompt() -> None:
    state = {"messages": [HumanMessage("hi", id="h1")], "context_view": {"kept_ids": []}}
    assert [m.type for m in model_input(state, system_prompt="p")] == ["system"]
