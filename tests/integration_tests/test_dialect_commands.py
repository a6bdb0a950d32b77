"""Tools returning ``Command``: state updates, parallel Commands, and hand-offs between agents.

Every agent is streamagent's own graph, the model the scripted server over real HTTP, and the
runs stream through ``astream_chunks`` (a supervisor and a swarm, as LangGraph users build).
"""

from __future__ import annotations

from typing import Annotated, Any, NotRequired

from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, InjectedToolCallId, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import InjectedState
from langgraph.types import Command

from streamagent import StreamChunk, create_agent_graph, stream_chunks
from streamagent.state import AgentState
from streamagent.testing import Reply, ToolCall
from tests._support.streams import collect, tool_results
from tests.conftest import config_for


class NotesState(AgentState):
    notes: NotRequired[list[str]]


@tool
def take_note(note: str, call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
    """Write a note into the agent's state."""
    return Command(
        update={
            "notes": [note],
            "messages": [ToolMessage(f"noted {note}", tool_call_id=call_id)],
        }
    )


@tool
def read_notes(notes: Annotated[list[str], InjectedState("notes")]) -> str:
    """Read the notes."""
    return "|".join(notes)


@tool
def broken_command(call_id: Annotated[str, InjectedToolCallId]) -> Command[Any]:
    """Return a Command that does not answer its call."""
    return Command(update={"notes": ["never"]})


async def test_a_command_update_is_applied_with_its_tool_message(make_server: Any) -> None:
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("take_note", {"note": "milk"}, id="n1")]),
            Reply(tool_calls=[ToolCall("read_notes", {}, id="r1")]),
            "noted",
        ]
    )
    agent = create_agent_graph(
        tools=[take_note, read_notes], config=config_for(server), state_schema=NotesState
    ).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "remember milk", thread_id="cmd")
    assert chunks[-1].type == "done", chunks[-1]
    results = tool_results(chunks)
    assert results["n1"] == {
        "tool_call_id": "n1",
        "name": "take_note",
        "content": "noted milk",
        "status": "success",
    }
    assert results["r1"]["content"] == "milk"  # the Command's update reached the state
    state = (await agent.aget_state({"configurable": {"thread_id": "cmd"}})).values
    assert state["notes"] == ["milk"]
    # the model saw the Command's ToolMessage answering its call
    second = server.requests[1].messages
    assert second[-1] == {"role": "tool", "tool_call_id": "n1", "content": "noted milk"}


def test_parallel_commands_combine_in_call_order_on_the_sync_path(make_server: Any) -> None:
    server = make_server(
        [
            Reply(
                tool_calls=[
                    ToolCall("take_note", {"note": "a"}, id="p1"),
                    ToolCall("read_notes", {}, id="p2"),
                    ToolCall("take_note", {"note": "b"}, id="p3"),
                ]
            ),
            "done",
        ]
    )

    class ListNotes(AgentState):
        notes: NotRequired[Annotated[list[str], lambda a, b: [*a, *b]]]

    agent = create_agent_graph(
        tools=[take_note, read_notes], config=config_for(server), state_schema=ListNotes
    ).compile(checkpointer=InMemorySaver())
    agent.update_state({"configurable": {"thread_id": "par"}}, {"notes": ["start"]})
    chunks = list(stream_chunks(agent, "notes", thread_id="par"))
    assert chunks[-1].type == "done", chunks[-1]
    state = agent.get_state({"configurable": {"thread_id": "par"}}).values
    assert state["notes"] == ["start", "a", "b"]  # both Commands applied
    tool_ids = [m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)]
    assert tool_ids == ["p1", "p2", "p3"]  # the calls' order
    assert tool_results(chunks)["p2"]["content"] == "start"


async def test_a_command_without_its_tool_message_becomes_an_error_result(
    make_server: Any,
) -> None:
    server = make_server([Reply(tool_calls=[ToolCall("broken_command", {}, id="b1")]), "sorry"])
    agent = create_agent_graph(
        tools=[broken_command], config=config_for(server), state_schema=NotesState
    ).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "go", thread_id="broken")
    assert chunks[-1].type == "done", chunks[-1]
    result = tool_results(chunks)["b1"]
    assert result["status"] == "error"
    assert "ToolMessage" in result["content"]
    state = (await agent.aget_state({"configurable": {"thread_id": "broken"}})).values
    assert "notes" not in state  # the invalid Command was not applied


# ----------------------------------------------------------------------------- hand-offs
def handoff_tool(agent_name: str) -> BaseTool:
    """The swarm/supervisor hand-off tool, as LangGraph's docs write it."""

    @tool(f"transfer_to_{agent_name}")
    def transfer(
        state: Annotated[dict[str, Any], InjectedState],
        tool_call_id: Annotated[str, InjectedToolCallId],
    ) -> Command[Any]:
        """Hand the conversation over to another agent."""
        done = ToolMessage(f"Transferred to {agent_name}", tool_call_id=tool_call_id)
        return Command(
            goto=agent_name,
            graph=Command.PARENT,
            update={"messages": [*state["messages"], done], "active_agent": agent_name},
        )

    return transfer


class SwarmState(MessagesState):
    active_agent: NotRequired[str]


def _by_type(chunks: list[StreamChunk], kind: str) -> list[StreamChunk]:
    return [c for c in chunks if c.type == kind]


async def test_a_swarm_hands_over_between_two_agents_and_streams(make_server: Any) -> None:
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("transfer_to_bob", {}, id="h1")]),
            "Bob here: 42.",
            "Bob again.",
        ]
    )
    cfg = config_for(server)
    alice = create_agent_graph(tools=[handoff_tool("bob")], config=cfg, name="alice")
    bob = create_agent_graph(tools=[handoff_tool("alice")], config=cfg, name="bob")
    builder = StateGraph(SwarmState)
    builder.add_node("alice", alice.compile(name="alice"), destinations=("bob",))
    builder.add_node("bob", bob.compile(name="bob"), destinations=("alice",))
    builder.add_conditional_edges(
        START, lambda s: s.get("active_agent") or "alice", ["alice", "bob"]
    )
    swarm = builder.compile(checkpointer=InMemorySaver())

    chunks = await collect(swarm, "what is the answer?", thread_id="sw")
    assert chunks[-1].type == "done", chunks[-1]
    assert [(c.agent, c.tool_call["name"]) for c in _by_type(chunks, "tool_call")] == [
        ("alice", "transfer_to_bob")
    ]
    handed = tool_results(chunks)["h1"]
    assert handed["content"] == "Transferred to bob" and handed["status"] == "success"
    assert [c.agent for c in _by_type(chunks, "tool_result")] == ["alice"]
    text = "".join(c.content or "" for c in _by_type(chunks, "content") if c.agent == "bob")
    assert text == "Bob here: 42."
    usage = chunks[-1].usage or {}
    assert usage["requests"] == 2  # alice's call and bob's
    state = (await swarm.aget_state({"configurable": {"thread_id": "sw"}})).values
    assert state["active_agent"] == "bob"
    assert [m.type for m in state["messages"]] == ["human", "ai", "tool", "ai"]

    # the next turn starts with the active agent
    again = await collect(swarm, "and again?", thread_id="sw")
    assert {c.agent for c in _by_type(again, "content")} == {"bob"}
    assert len(server.requests) == 3


async def test_a_supervisor_delegates_to_a_worker_and_answers(make_server: Any) -> None:
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("transfer_to_worker", {}, id="s1")]),
            "The worker's result is 7.",
            "Final: 7.",
        ]
    )
    cfg = config_for(server)
    supervisor = create_agent_graph(
        tools=[handoff_tool("worker")], config=cfg, name="supervisor"
    ).compile(name="supervisor")
    worker = create_agent_graph(config=cfg, name="worker").compile(name="worker")
    builder = StateGraph(SwarmState)
    builder.add_node("supervisor", supervisor, destinations=("worker", END))
    builder.add_node("worker", worker)
    builder.add_edge(START, "supervisor")
    builder.add_edge("worker", "supervisor")
    graph = builder.compile(checkpointer=InMemorySaver())

    chunks = await collect(graph, "compute", thread_id="sup")
    assert chunks[-1].type == "done", chunks[-1]
    order = [c.agent for c in _by_type(chunks, "content")]
    assert order[0] == "worker" and order[-1] == "supervisor"
    texts = {
        agent: "".join(c.content or "" for c in _by_type(chunks, "content") if c.agent == agent)
        for agent in ("worker", "supervisor")
    }
    assert texts == {"worker": "The worker's result is 7.", "supervisor": "Final: 7."}
    assert tool_results(chunks)["s1"]["content"] == "Transferred to worker"
    assert (chunks[-1].usage or {})["requests"] == 3
    messages = (await graph.aget_state({"configurable": {"thread_id": "sup"}})).values["messages"]
    assert [m.type for m in messages] == ["human", "ai", "tool", "ai", "ai"]
