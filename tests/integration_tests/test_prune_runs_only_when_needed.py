"""The agent skips its ``prune`` step only when the step would change nothing (checked against
the node itself on many threads), and runs it whenever the thread needs it."""

from __future__ import annotations

import random
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import (
    AgentConfig,
    ModelConfig,
    PruningConfig,
    build_agent,
)
from streamagent.accounting.tokens import get_encoding
from streamagent.errors import ContextTooLongError, InvalidInputError
from streamagent.nodes import prune as prune_module
from streamagent.nodes.prune import PruneNode
from tests.conftest import config_for

NOOP = {"run_steps": 0, "context_view": {"kept_ids": None, "shrunk": {}}}


def _node(**pruning: Any) -> PruneNode:
    config = AgentConfig(
        model=ModelConfig(api_key="sk-test", context_window=2_000, max_tokens=200),
        pruning=PruningConfig(**pruning),
    )
    node = PruneNode(tools=[], config=config)
    get_encoding(node.counter.encoding_name)
    return node


def _turns(n: int, words: int = 20, *, tool_words: int = 5) -> list[BaseMessage]:
    messages: list[BaseMessage] = [SystemMessage("be brief", id="s")]
    for i in range(n):
        messages.append(HumanMessage(" ".join(["question"] * words), id=f"h{i}"))
        call = {"name": "look", "args": {}, "id": f"c{i}", "type": "tool_call"}
        messages.append(AIMessage("", tool_calls=[call], id=f"a{i}"))
        messages.append(
            ToolMessage(" ".join(["data"] * tool_words), tool_call_id=f"c{i}", id=f"t{i}")
        )
        messages.append(AIMessage(" ".join(["answer"] * words), id=f"r{i}"))
    messages.append(HumanMessage("and now?", id="last"))
    return messages


def test_route_skips_prune_only_when_its_update_would_change_nothing() -> None:
    rng = random.Random(7)
    node = _node(max_tool_output_tokens=300)
    skipped = ran = 0
    for _ in range(60):
        thread = _turns(
            rng.randint(0, 30), words=rng.randint(1, 40), tool_words=rng.randint(1, 400)
        )
        state: dict[str, Any] = {"messages": thread}
        if rng.random() < 0.3:
            state["context_view"] = {"kept_ids": [m.id for m in thread[-3:]], "shrunk": {}}
        route = node.route(state)
        if route == "model":
            skipped += 1
            assert node.invoke(state) == NOOP, "skipped, yet the node would have changed the state"
        else:
            ran += 1
            try:
                update = node.invoke(state)
            except ContextTooLongError:
                continue
            assert update != NOOP or state.get("context_view"), (
                "routed to a node with nothing to do"
            )
    assert skipped and ran, (skipped, ran)


def test_route_sends_every_case_the_node_must_handle_through_it(monkeypatch) -> None:
    node = _node(max_tool_output_tokens=50)
    assert node.route({"messages": _turns(1)}) == "model"
    too_long = _turns(200)
    assert node.route({"messages": too_long}) == "prune"
    assert "messages" not in node.invoke({"messages": too_long})  # view policy: state kept
    oversized_tool_output = _turns(1, tool_words=500)
    assert node.route({"messages": oversized_tool_output}) == "prune"
    stale = {"messages": _turns(1), "context_view": {"kept_ids": ["last"], "shrunk": {}}}
    assert node.route(stale) == "prune"
    assert node.invoke(stale) == NOOP, "the node resets an earlier view"
    assert node.route({"messages": []}) == "prune"
    with pytest.raises(InvalidInputError):
        node.invoke({"messages": []})
    huge_input = [HumanMessage(" ".join(["word"] * 5_000), id="h")]
    assert node.route({"messages": huge_input}) == "prune"
    with pytest.raises(ContextTooLongError):
        node.invoke({"messages": huge_input})
    monkeypatch.setattr(prune_module, "encoding_ready", lambda name: False)
    assert node.route({"messages": _turns(1)}) == "prune", "the node loads a tokenizer off-loop"


async def test_graph_runs_prune_when_the_thread_needs_it(make_server) -> None:
    server = make_server(["a1", "a2", "a3", "a4"])
    config = config_for(
        server, context_window=1200, max_tokens=200, pruning=PruningConfig(max_messages=3)
    )
    agent = build_agent(config=config, checkpointer=InMemorySaver())
    cfg = {"configurable": {"thread_id": "t"}}
    nodes = []
    for prompt in ("q1", "q2", "q3"):
        steps = [
            next(iter(update))
            async for update in agent.astream(
                {"messages": [HumanMessage(prompt)]}, cfg, stream_mode="updates"
            )
        ]
        nodes.append(steps)
    assert nodes[0] == ["model"], "a one-message thread fits: no prune step"
    assert nodes[2] == ["prune", "model"], "five messages > max_messages=3: pruned"
    assert len(server.requests[2].messages) <= 3
