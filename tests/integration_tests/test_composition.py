"""Two streamagent agents as nodes of a supervisor-style parent graph sharing one saver.

The parent is a plain ``MessagesState`` graph: a router (conditional edge from START) sends a
turn to the ``researcher`` (which hands over to the ``writer``) or straight to the ``writer``.
Both agents are compiled streamagent graphs with their own scripted model server, so each
request can be traced to the agent that made it. The saver is LangGraph's ``InMemorySaver`` or
streamagent's ``AsyncRedisSaver`` on real Redis.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from streamagent import RetryConfig, create_agent_graph
from streamagent.state import AgentState
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from tests._support.streams import collect, text
from tests.conftest import config_for
from tests.redis_fixtures import (  # noqa: F401 - fixtures
    key_prefix,
    make_saver,
    redis_url,
    sync_client,
)

NOTES: list[dict[str, str]] = []


@tool
def save_note(title: str, text: str) -> str:
    """Save a note under a title."""
    NOTES.append({"title": title, "text": text})
    return f"saved {title!r}"


def route(state: MessagesState) -> str:
    """The supervisor's decision: research first when the user asks for it."""
    last = state["messages"][-1]
    return "researcher" if "research" in str(last.content).lower() else "writer"


def supervisor(
    researcher_server: ScriptedOpenAIServer,
    writer_server: ScriptedOpenAIServer,
    saver: BaseCheckpointSaver[Any],
    **writer_options: Any,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    researcher = create_agent_graph(
        config=config_for(researcher_server), name="researcher"
    ).compile(name="researcher")
    writer = create_agent_graph(
        tools=[save_note], config=config_for(writer_server, **writer_options), name="writer"
    ).compile(name="writer")
    parent = StateGraph(MessagesState)
    parent.add_node("researcher", researcher)
    parent.add_node("writer", writer)
    parent.add_conditional_edges(START, route, ["researcher", "writer"])
    parent.add_edge("researcher", "writer")
    parent.add_edge("writer", END)
    return parent.compile(checkpointer=saver, name="supervisor")


@pytest.fixture(params=["memory", "redis"])
async def saver(request: pytest.FixtureRequest) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    if request.param == "memory":
        yield InMemorySaver()
        return
    redis_saver = request.getfixturevalue("make_saver")("async")
    await redis_saver.asetup()
    yield redis_saver
    await redis_saver.client.aclose()


@pytest.fixture
def servers(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> tuple[ScriptedOpenAIServer, ScriptedOpenAIServer]:
    return make_server(), make_server()


async def thread_messages(graph: Any, thread_id: str) -> list[BaseMessage]:
    state = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    messages: list[BaseMessage] = state.values["messages"]
    assert len({m.id for m in messages}) == len(messages), "message ids must be unique"
    return messages


def summary(messages: list[BaseMessage]) -> list[tuple[str, str | None, str]]:
    return [(m.type, m.name, str(m.content)) for m in messages]


async def test_tokens_from_both_subgraphs_stream_attributed_to_their_agent(servers, saver):
    researcher_server, writer_server = servers
    researcher_server.enqueue(Reply("Otters hold hands while they sleep."))
    writer_server.enqueue(Reply("Note: sleeping otters hold hands."))
    app = supervisor(researcher_server, writer_server, saver)

    chunks = await collect(app, "research otters and write a note", thread_id="otters")

    content = [c for c in chunks if c.type == "content"]
    agents = [c.agent for c in content]
    assert set(agents) == {"researcher", "writer"}
    assert agents == sorted(agents), "the researcher's tokens all come before the writer's"
    assert agents.count("researcher") > 3 and agents.count("writer") > 3
    assert text(chunks, agent="researcher") == "Otters hold hands while they sleep."
    assert text(chunks, agent="writer") == "Note: sleeping otters hold hands."
    for c in content:
        assert c.namespace[0].split(":", 1)[0] == c.agent
    done = chunks[-1]
    assert done.type == "done"
    assert done.usage is not None and done.usage["requests"] == 2
    # the writer saw the researcher's answer, attributed by name
    assert writer_server.requests[0].messages == [
        {"role": "user", "content": "research otters and write a note"},
        {
            "role": "assistant",
            "content": "Otters hold hands while they sleep.",
            "name": "researcher",
        },
    ]
    assert summary(await thread_messages(app, "otters")) == [
        ("human", None, "research otters and write a note"),
        ("ai", "researcher", "Otters hold hands while they sleep."),
        ("ai", "writer", "Note: sleeping otters hold hands."),
    ]


async def test_second_turn_routes_to_one_agent_and_history_is_not_duplicated(servers, saver):
    researcher_server, writer_server = servers
    researcher_server.enqueue(Reply("Facts about tea."))
    writer_server.enqueue(Reply("Tea, a note."), Reply("Title: Tea"))
    app = supervisor(researcher_server, writer_server, saver)

    await collect(app, "research tea", thread_id="tea")
    second = await collect(app, "now write a title", thread_id="tea")

    assert {c.agent for c in second if c.type == "content"} == {"writer"}
    assert len(researcher_server.requests) == 1
    assert [m["content"] for m in writer_server.requests[1].messages] == [
        "research tea",
        "Facts about tea.",
        "Tea, a note.",
        "now write a title",
    ]
    assert summary(await thread_messages(app, "tea")) == [
        ("human", None, "research tea"),
        ("ai", "researcher", "Facts about tea."),
        ("ai", "writer", "Tea, a note."),
        ("human", None, "now write a title"),
        ("ai", "writer", "Title: Tea"),
    ]


class TraceRecorder(AsyncCallbackHandler):
    """Records the tags and metadata every chat-model run is traced with."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[str], dict[str, Any]]] = []

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.runs.append((list(tags or []), dict(metadata or {})))


async def test_native_messages_stream_and_traces_name_each_agent(servers):
    researcher_server, writer_server = servers
    researcher_server.enqueue(Reply("Bees dance to share directions."))
    writer_server.enqueue(Reply("Bees dance: a note."))
    app = supervisor(researcher_server, writer_server, InMemorySaver())
    recorder = TraceRecorder()
    config = {"configurable": {"thread_id": "bees"}, "callbacks": [recorder]}

    tokens: dict[str, list[str]] = {}
    namespaces: dict[str, set[str]] = {}
    async for namespace, (chunk, metadata) in app.astream(
        {"messages": [HumanMessage("research bees")]},
        config,
        stream_mode="messages",
        subgraphs=True,
    ):
        if isinstance(chunk, AIMessageChunk) and chunk.text:
            agent = metadata["streamagent_agent"]
            tokens.setdefault(agent, []).append(chunk.text)
            namespaces.setdefault(agent, set()).add(namespace[0].split(":", 1)[0])

    assert {k: "".join(v) for k, v in tokens.items()} == {
        "researcher": "Bees dance to share directions.",
        "writer": "Bees dance: a note.",
    }
    assert namespaces == {"researcher": {"researcher"}, "writer": {"writer"}}
    traced = [(meta["streamagent_agent"], tags) for tags, meta in recorder.runs]
    assert [agent for agent, _ in traced] == ["researcher", "writer"]
    for agent, tags in traced:
        assert f"streamagent:{agent}" in tags


async def test_approval_interrupt_inside_a_subgraph_resumes_through_the_parent(servers, saver):
    researcher_server, writer_server = servers
    call = ToolCall("save_note", {"title": "plan", "text": "ship it"}, id="note1")
    writer_server.enqueue(Reply(tool_calls=[call]), Reply("Saved the plan."))
    app = supervisor(
        researcher_server, writer_server, saver, require_approval=frozenset({"save_note"})
    )
    NOTES.clear()

    first = await collect(app, "write down the plan", thread_id="plan")

    interrupts = [c for c in first if c.type == "interrupt"]
    assert len(interrupts) == 1, "the parent re-raises the subgraph's interrupt: report it once"
    assert interrupts[0].agent == "writer"
    assert [c.tool_call["id"] for c in first if c.type == "tool_call"] == ["note1"]
    request = interrupts[0].interrupt[0]["value"]
    assert request["agent"] == "writer"
    assert request["calls"] == [
        {"id": "note1", "name": "save_note", "args": {"title": "plan", "text": "ship it"}}
    ]
    assert NOTES == [], "nothing runs before approval"
    paused = await app.aget_state({"configurable": {"thread_id": "plan"}})
    assert paused.next == ("writer",)

    resumed = await collect(app, None, thread_id="plan", resume="approve")

    assert NOTES == [{"title": "plan", "text": "ship it"}]
    assert not [c for c in resumed if c.type == "tool_call"], "the call was reported already"
    results = [c.tool_result for c in resumed if c.type == "tool_result"]
    assert results == [
        {
            "tool_call_id": "note1",
            "name": "save_note",
            "content": "saved 'plan'",
            "status": "success",
        }
    ]
    assert text(resumed, agent="writer") == "Saved the plan."
    assert resumed[-1].type == "done"
    assert len(writer_server.requests) == 2, "resuming must not call the model again"
    messages = await thread_messages(app, "plan")
    assert [(m.type, m.name) for m in messages] == [
        ("human", None),
        ("ai", "writer"),
        ("tool", "save_note"),
        ("ai", "writer"),
    ]
    assert isinstance(messages[1], AIMessage) and messages[1].tool_calls[0]["id"] == "note1"


async def test_reject_via_command_resume_on_the_parent_graph_api(servers, saver):
    researcher_server, writer_server = servers
    call = ToolCall("save_note", {"title": "secret", "text": "x"}, id="note2")
    writer_server.enqueue(Reply(tool_calls=[call]), Reply("Understood, not saved."))
    app = supervisor(
        researcher_server, writer_server, saver, require_approval=frozenset({"save_note"})
    )
    NOTES.clear()
    config = {"configurable": {"thread_id": "cmd"}}

    paused = await app.ainvoke({"messages": [HumanMessage("write the secret")]}, config)
    assert "__interrupt__" in paused
    out = await app.ainvoke(Command(resume={"action": "reject", "reason": "private"}), config)

    assert NOTES == []
    tool_message = out["messages"][2]
    assert tool_message.type == "tool" and tool_message.status == "error"
    assert "private" in tool_message.content
    assert out["messages"][-1].content == "Understood, not saved."
    assert len(out["messages"]) == 4
    assert len({m.id for m in out["messages"]}) == 4


async def test_model_fault_mid_run_ends_with_error_and_next_run_keeps_history(servers, saver):
    researcher_server, writer_server = servers
    researcher_server.enqueue(Reply("Comets have two tails."))
    writer_server.enqueue(Fault.http(500), Fault.http(500), Reply("Comets: two tails."))
    retry = RetryConfig(max_retries=1, initial_delay_seconds=0.01, jitter=False)
    app = supervisor(researcher_server, writer_server, saver, retry=retry)

    failed = await collect(app, "research comets", thread_id="comets")

    assert failed[-1].type == "error"
    assert failed[-1].error is not None
    assert failed[-1].error["type"] == "ModelUnavailableError"
    assert text(failed, agent="researcher") == "Comets have two tails."
    assert summary(await thread_messages(app, "comets")) == [
        ("human", None, "research comets"),
        ("ai", "researcher", "Comets have two tails."),
    ]

    again = await collect(app, "write it up", thread_id="comets")

    assert again[-1].type == "done"
    assert text(again, agent="writer") == "Comets: two tails."
    assert len(researcher_server.requests) == 1
    assert [m["content"] for m in writer_server.requests[-1].messages] == [
        "research comets",
        "Comets have two tails.",
        "write it up",
    ]
    assert summary(await thread_messages(app, "comets")) == [
        ("human", None, "research comets"),
        ("ai", "researcher", "Comets have two tails."),
        ("human", None, "write it up"),
        ("ai", "writer", "Comets: two tails."),
    ]


async def test_parent_with_agent_state_counts_usage_and_tool_chunks_once(make_server):
    server = make_server(
        [Reply(tool_calls=[ToolCall("save_note", {"title": "a", "text": "b"}, id="n1")]), "done"]
    )
    agent = create_agent_graph(tools=[save_note], config=config_for(server), name="solo")
    parent = StateGraph(AgentState)
    parent.add_node("solo", agent.compile(name="solo"))
    parent.add_edge(START, "solo")
    app = parent.compile(checkpointer=InMemorySaver())
    NOTES.clear()

    chunks = await collect(app, "note it", thread_id="solo")

    assert [c.type for c in chunks if c.type in ("tool_call", "tool_result")] == [
        "tool_call",
        "tool_result",
    ]
    assert all(c.agent == "solo" for c in chunks if c.type in ("tool_call", "tool_result"))
    done = chunks[-1]
    assert done.type == "done" and done.usage is not None
    assert done.usage["requests"] == 2, "the parent's copy of the usage must not count twice"
    state = await app.aget_state({"configurable": {"thread_id": "solo"}})
    assert state.values["usage"]["requests"] == 2
    assert done.cost_usd is not None and state.values["cost_usd"] == done.cost_usd
