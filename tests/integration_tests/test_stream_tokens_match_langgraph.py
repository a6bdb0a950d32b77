"""``astream_chunks`` streams the agent's tokens exactly as LangGraph's ``messages`` mode does
— in order, once — though it takes them straight from the model node (a token sink), and
everything else from LangGraph.

- the same tokens as LangGraph's own ``messages`` mode, none twice (the node's final message,
  which LangGraph now reports at the node's end, is not shown again);
- a chat model that is not streamagent's, inside a composed graph, still streams through
  LangGraph;
- the model run is tagged ``nostream`` only when the sink takes its tokens;
- an agent run on another event loop (a sync node's worker thread) never touches the sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from streamagent import astream_chunks, build_agent
from streamagent.llm import create_chat_model
from streamagent.streaming.sink import TokenSink, graph_namespace
from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
from tests._support.agents import lookup
from tests._support.callbacks import ModelRunRecorder
from tests._support.streams import collect, text
from tests.conftest import config_for

STORY = "Once upon a time there was a stream that arrived one token at a time."


def _script() -> list[Reply]:
    return [Reply(tool_calls=[ToolCall("lookup", {"text": "x"})]), Reply(STORY)]


async def test_tokens_are_langgraphs_own_once_each(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    direct = make_server(_script())
    via_langgraph = make_server(_script())
    agent = build_agent(tools=[lookup], config=config_for(direct), checkpointer=InMemorySaver())
    ours = await collect(agent, "go")
    content = [c.content or "" for c in ours if c.type == "content"]

    reference = build_agent(
        tools=[lookup], config=config_for(via_langgraph), checkpointer=InMemorySaver()
    )
    theirs = [
        msg.content
        async for msg, _meta in reference.astream(
            {"messages": [HumanMessage("go")]},
            {"configurable": {"thread_id": "t"}},
            stream_mode="messages",
        )
        if isinstance(msg, AIMessageChunk) and msg.content
    ]
    assert content == theirs
    assert "".join(content) == STORY
    assert len(content) > 5, "streamed token by token"
    assert [c.type for c in ours].count("tool_call") == 1
    assert [c.type for c in ours][-1] == "done"
    assert all(c.agent == "agent" for c in ours if c.type == "content")


@pytest.mark.fast_path
async def test_only_the_sink_path_tags_the_model_run_nostream_and_callbacks_see_every_token(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server([STORY, STORY])
    agent = build_agent(config=config_for(server), checkpointer=False)
    sink_path, plain_path = ModelRunRecorder(), ModelRunRecorder()
    async for _ in astream_chunks(agent, "hi", config={"callbacks": [sink_path]}):
        pass
    async for _ in agent.astream(
        {"messages": [HumanMessage("hi")]}, {"callbacks": [plain_path]}, stream_mode="messages"
    ):
        pass
    assert sink_path.tags == [[*sink_path.tags[0]]] and "nostream" in sink_path.tags[0]
    assert len(plain_path.tags) == 1 and "nostream" not in plain_path.tags[0]
    assert "streamagent:agent" in sink_path.tags[0] and "streamagent:agent" in plain_path.tags[0]
    # LangGraph's own handler is left out of the sink path's model call, a user's is not
    assert "".join(sink_path.tokens) == STORY == "".join(plain_path.tokens)
    assert len(sink_path.tokens) > 5


class _Pair(TypedDict):
    messages: list[BaseMessage]


async def test_a_foreign_chat_model_in_a_composed_graph_still_streams(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server([STORY, "The agent answers."])
    model = create_chat_model(config_for(server).model)

    async def narrator(state: _Pair, config: RunnableConfig) -> dict[str, Any]:
        return {"messages": [*state["messages"], await model.ainvoke(state["messages"], config)]}

    agent = build_agent(config=config_for(server), checkpointer=False, name="agent")
    parent = StateGraph(_Pair)
    parent.add_node("narrator", narrator)
    parent.add_node("agent", agent)
    parent.add_edge(START, "narrator")
    parent.add_edge("narrator", "agent")
    parent.add_edge("agent", END)
    graph = parent.compile()
    chunks = await collect(graph, "tell me", thread_id=None)
    by_source: dict[str, str] = {}
    for c in chunks:
        if c.type == "content":
            key = "agent" if c.namespace else "narrator"
            by_source[key] = by_source.get(key, "") + (c.content or "")
    assert by_source == {"narrator": STORY, "agent": "The agent answers."}
    assert sum(1 for c in chunks if c.type == "content" and not c.namespace) > 5


# ---------------------------------------------------------------------------- pure parts
async def test_sink_hands_over_batches_in_order_then_the_error() -> None:
    sink = TokenSink()
    sink.put(((), "messages", 1))
    sink.put(((), "updates", 2))
    assert await sink.take() == [((), "messages", 1), ((), "updates", 2)]
    reader = asyncio.create_task(sink.take())
    await asyncio.sleep(0)
    sink.put((("a:1",), "custom", 3))
    assert await reader == [(("a:1",), "custom", 3)]
    sink.put(((), "messages", 4))
    sink.close(RuntimeError("boom"))
    assert await sink.take() == [((), "messages", 4)]
    with pytest.raises(RuntimeError, match="boom"):
        await sink.take()
    sink2 = TokenSink()
    sink2.close()
    assert await sink2.take() is None


def test_graph_namespace_matches_langgraphs_messages_mode() -> None:
    from langgraph.pregel._messages import graph_namespace as langgraph_namespace

    cases: list[dict[str, Any]] = [
        {"langgraph_checkpoint_ns": "model:1", "langgraph_path": ("__pregel_pull", "model")},
        {"langgraph_checkpoint_ns": "agent:1|model:2", "langgraph_path": ("__pregel_pull", "m")},
        {
            "langgraph_checkpoint_ns": "a:1|call:2",
            "langgraph_path": ("__pregel_push", ("__pregel_pull", "a"), 0, True),
        },
        {
            "langgraph_checkpoint_ns": "a:1|b:2|send:3",
            "langgraph_path": ("__pregel_push", 0, 1, False),
        },
    ]
    for metadata in cases:
        assert graph_namespace(metadata) == langgraph_namespace(metadata), metadata


async def test_a_sink_is_only_used_on_the_loop_that_reads_it() -> None:
    import threading

    from streamagent.streaming.protocol import SINK_KEY
    from streamagent.streaming.sink import sink_of

    sink = TokenSink()
    config: dict[str, Any] = {"configurable": {SINK_KEY: sink}}
    assert sink_of(config) is sink
    assert sink_of({"configurable": {SINK_KEY: "not a sink"}}) is None
    seen: list[object] = []

    def in_another_thread() -> None:
        async def nested() -> None:
            seen.append(sink_of(config))

        asyncio.run(nested())
        seen.append(sink_of(config))  # no loop running at all

    thread = threading.Thread(target=in_another_thread)
    thread.start()
    thread.join()
    assert seen == [None, None]


async def test_an_agent_run_on_another_loop_inside_a_sync_node_still_streams(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server([STORY])
    agent = build_agent(config=config_for(server), checkpointer=False, name="inner")

    def sync_node(state: _Pair) -> dict[str, Any]:
        # a sync node (LangGraph runs it in a worker thread) driving the agent on a loop of its own
        result = asyncio.run(agent.ainvoke({"messages": state["messages"]}))
        return {"messages": result["messages"]}

    parent = StateGraph(_Pair)
    parent.add_node("outer", sync_node)
    parent.add_edge(START, "outer")
    parent.add_edge("outer", END)
    chunks = await collect(parent.compile(), "tell me", thread_id=None)
    assert chunks[-1].type == "done", chunks[-1]
    assert text(chunks) == STORY
