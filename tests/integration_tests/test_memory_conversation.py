"""ConversationManager is a view over the agent's saver thread, with limits enforced on write."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.graph import END, START, StateGraph

from streamagent.errors import InvalidInputError
from streamagent.memory import ConversationManager, MemoryConfig, RedisSaver
from streamagent.state import AgentState
from tests.redis_fixtures import *  # noqa: F403


def _agent_shaped_graph(saver: Any, seen: list[list[BaseMessage]]) -> Any:
    """START -> prune -> model -> (tools -> prune | END), with a model that records its input."""

    def model(state: AgentState) -> dict[str, Any]:
        seen.append(list(state["messages"]))
        return {"messages": [AIMessage(f"I saw {len(state['messages'])} messages")]}

    builder = StateGraph(AgentState)
    builder.add_node("prune", lambda s: {"run_steps": 0})
    builder.add_node("model", model)
    builder.add_node("tools", lambda s: {})
    builder.add_edge(START, "prune")
    builder.add_edge("prune", "model")
    builder.add_conditional_edges("model", lambda s: END, ["tools", END])
    builder.add_edge("tools", "prune")
    return builder.compile(checkpointer=saver)


def _manager(make_saver: Any, **limits: Any) -> tuple[ConversationManager, RedisSaver]:
    saver = make_saver("sync")
    config = MemoryConfig(key_prefix=saver.key_prefix, **limits)
    return ConversationManager(config, saver=saver), saver


async def test_agent_run_after_add_message_sees_the_messages(make_saver: Any) -> None:
    manager, saver = _manager(make_saver)
    await manager.add_message("s1", {"role": "system", "content": "Be brief."})
    await manager.add_message("s1", {"role": "user", "content": "My name is Ann."})
    await manager.add_message("s1", AIMessage("Hello Ann."))
    seen: list[list[BaseMessage]] = []
    graph = _agent_shaped_graph(saver, seen)
    config = {"configurable": {"thread_id": "s1"}}
    assert graph.get_state(config).next == ()
    await graph.ainvoke({"messages": [HumanMessage("What is my name?")]}, config)
    assert [m.content for m in seen[0]] == [
        "Be brief.",
        "My name is Ann.",
        "Hello Ann.",
        "What is my name?",
    ]
    conversation = await manager.get_conversation("s1")
    assert conversation[-1].content == "I saw 4 messages"
    assert [type(m) for m in conversation[:2]] == [SystemMessage, HumanMessage]


def test_sync_api_and_clear(make_saver: Any, sync_client: Any) -> None:
    manager, saver = _manager(make_saver)
    manager.add_message_sync("s", {"role": "user", "content": "hi"})
    manager.add_message_sync("s", {"role": "assistant", "content": "hello"})
    assert [m.content for m in manager.get_conversation_sync("s")] == ["hi", "hello"]
    manager.clear_sync("s")
    assert manager.get_conversation_sync("s") == []
    assert not any(sync_client.exists(k) for k in saver.data_keys("s"))


async def test_max_messages_drops_oldest_turns_but_keeps_system_and_tool_pairs(
    make_saver: Any,
) -> None:
    manager, _ = _manager(make_saver, max_messages=4, max_tokens=None)
    await manager.add_message("s", SystemMessage("sys"))
    for i in range(3):
        await manager.add_message("s", HumanMessage(f"q{i}"))
        await manager.add_message("s", AIMessage(f"a{i}"))
    # pruning rules: system kept, newest turn kept, then the older turn's question if it fits
    assert [m.content for m in await manager.get_conversation("s")] == ["sys", "q1", "q2", "a2"]
    await manager.add_message("s", HumanMessage("use tool"))
    await manager.add_message(
        "s",
        {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "name": "t", "args": {}}]},
    )
    await manager.add_message("s", {"role": "tool", "content": "out", "tool_call_id": "c1"})
    conversation = await manager.get_conversation("s")
    assert isinstance(conversation[0], SystemMessage)
    assert [type(m) for m in conversation[-3:]] == [HumanMessage, AIMessage, ToolMessage]
    assert len(conversation) <= 4


async def test_max_tokens_limits_what_is_kept(make_saver: Any) -> None:
    manager, _ = _manager(make_saver, max_messages=None, max_tokens=60)
    for i in range(6):
        await manager.add_message("s", HumanMessage(f"question number {i} " * 4))
    conversation = await manager.get_conversation("s")
    assert conversation[-1].content.startswith("question number 5")
    assert 1 <= len(conversation) < 6
    with pytest.raises(InvalidInputError, match="max_tokens"):
        await manager.add_message("s", HumanMessage("word " * 500))
    assert (await manager.get_conversation("s"))[-1].content.startswith("question number 5")


async def test_invalid_messages_are_refused_clearly(make_saver: Any) -> None:
    manager, _ = _manager(make_saver)
    with pytest.raises(InvalidInputError, match="role"):
        await manager.add_message("s", {"content": "no role"})
    with pytest.raises(InvalidInputError):
        await manager.add_message("s", {"role": "wizard", "content": "x"})
    with pytest.raises(InvalidInputError, match="session_id"):
        await manager.add_message("", {"role": "user", "content": "x"})


def test_memory_config_repr_never_shows_the_password() -> None:
    config = MemoryConfig(host="h", password="s3cret!", url=None)
    assert "s3cret" not in repr(config)
    assert "s3cret" not in repr(MemoryConfig(url="redis://:s3cret@h:1/0"))
    assert config.redis_url() == "redis://:s3cret%21@h:6379/0"
