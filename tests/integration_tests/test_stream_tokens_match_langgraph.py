"""``astream_chunks`` takes the agent's tokens straight from the model node (its token sink),
and everything else from LangGraph, in order, once.

- the same tokens as LangGraph's own ``messages`` mode, none twice (the node's final message,
  which LangGraph now reports at the node's end, is not shown again);
- a chat model that is not streamagent's, inside a composed graph, still streams through
  LangGraph;
- a reader that stops early cancels the run and waits for its clean-up;
- the model run is tagged ``nostream`` only when the sink takes its tokens;
- a body read that waits longer than the read timeout fails, a slow *consumer* does not;
- an agent run on another event loop (a sync node's worker thread) never touches the sink.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypedDict

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from streamagent import RetryConfig, astream_chunks, build_agent
from streamagent._token_sink import TokenSink, graph_namespace
from streamagent.llm import create_chat_model
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer, ToolCall
from tests.conftest import config_for

STORY = "Once upon a time there was a stream that arrived one token at a time."


@tool
def lookup(text: str) -> str:
    """Look a word up (returns it upper-cased)."""
    return text.upper()


def _script() -> list[Reply]:
    return [Reply(tool_calls=[ToolCall("lookup", {"text": "x"})]), Reply(STORY)]


async def test_tokens_are_langgraphs_own_once_each(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    direct = make_server(_script())
    via_langgraph = make_server(_script())
    agent = build_agent(tools=[lookup], config=config_for(direct), checkpointer=InMemorySaver())
    ours = [c async for c in astream_chunks(agent, "go", thread_id="t")]
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


class _Tags(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.tags: list[list[str]] = []
        self.tokens: list[str] = []

    async def on_chat_model_start(
        self, serialized: Any, messages: Any, *, tags: list[str] | None = None, **kw: Any
    ) -> None:
        self.tags.append(list(tags or []))

    async def on_llm_new_token(self, token: str, **kw: Any) -> None:  # type: ignore[override]
        self.tokens.append(token)


@pytest.mark.fast_path
async def test_only_the_sink_path_tags_the_model_run_nostream_and_callbacks_see_every_token(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server([STORY, STORY])
    agent = build_agent(config=config_for(server), checkpointer=False)
    sink_path, plain_path = _Tags(), _Tags()
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
    chunks = [c async for c in astream_chunks(graph, "tell me")]
    by_source: dict[str, str] = {}
    for c in chunks:
        if c.type == "content":
            key = "agent" if c.namespace else "narrator"
            by_source[key] = by_source.get(key, "") + (c.content or "")
    assert by_source == {"narrator": STORY, "agent": "The agent answers."}
    assert sum(1 for c in chunks if c.type == "content" and not c.namespace) > 5


async def test_a_reader_that_stops_early_cancels_the_run_and_waits_for_it(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server(
        [Reply(STORY, token_delay_seconds=0.05), "Second turn."], token_delay_seconds=0.0
    )
    saver = InMemorySaver()
    agent = build_agent(config=config_for(server), checkpointer=saver)
    before = asyncio.all_tasks()
    stream = astream_chunks(agent, "hi", thread_id="t")
    async for chunk in stream:
        if chunk.type == "content":
            break
    await stream.aclose()
    left = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert not left, f"tasks still running after the reader stopped: {left}"
    types = [c.type async for c in astream_chunks(agent, "again", thread_id="t")]
    assert types[-1] == "done"
    state = await agent.aget_state({"configurable": {"thread_id": "t"}})
    assert state.values["messages"][-1].content == "Second turn."


async def test_a_slow_consumer_is_not_a_read_timeout_but_a_stalled_server_is(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    fast = make_server([STORY])
    agent = build_agent(config=config_for(fast, timeout_seconds=0.2), checkpointer=False)
    got: list[str] = []
    async for chunk in astream_chunks(agent, "hi"):
        if chunk.type == "content":
            got.append(chunk.content or "")
            if len(got) <= 2:
                await asyncio.sleep(0.5)  # longer than the read timeout, bytes already here
        assert chunk.type != "error", chunk.error
    assert "".join(got) == STORY

    stalled = make_server([Reply(STORY, fault=Fault.stall(5.0, after_chunks=3))])
    agent = build_agent(
        config=config_for(stalled, timeout_seconds=0.2, retry=RetryConfig(max_retries=0)),
        checkpointer=False,
    )
    started = asyncio.get_running_loop().time()
    chunks = [c async for c in astream_chunks(agent, "hi")]
    waited = asyncio.get_running_loop().time() - started
    assert chunks[-1].type == "error"
    assert chunks[-1].error is not None and chunks[-1].error["type"] == "ModelUnavailableError"
    assert waited < 3.0, f"the read timeout (0.2 s) ended the stalled stream after {waited:.1f} s"


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


# ------------------------------------------------------------- the body's lazy read timeout
class _Protocol:
    """What BodyReader needs of aiohttp's ResponseHandler (and StreamReader of its protocol)."""

    def __init__(self) -> None:
        self.read_timeout: float | None = 30.0
        self.connected = True
        self._reading_paused = False

    def pause_reading(self, **_: Any) -> None:
        self._reading_paused = True

    def resume_reading(self, **_: Any) -> None:
        self._reading_paused = False


class _Connection:
    def __init__(self) -> None:
        self.protocol = _Protocol()


def _reader(timeout: float) -> tuple[Any, Any, _Connection]:
    import aiohttp

    from streamagent._aio_transport import BodyReader

    connection = _Connection()
    loop = asyncio.get_running_loop()
    content = aiohttp.StreamReader(connection.protocol, 2**16, loop=loop)  # type: ignore[arg-type]
    body = BodyReader(content, read_timeout_seconds=timeout, connection=connection)
    return content, body, connection


async def test_body_reader_takes_the_read_timeout_over_and_times_a_waiting_read() -> None:
    import aiohttp

    content, body, connection = _reader(0.05)
    assert connection.protocol.read_timeout is None, "aiohttp's per-packet timer is off"
    content.feed_data(b"data: 1\n\n")
    assert await body.read() == b"data: 1\n\n"
    await asyncio.sleep(0.15)  # the consumer away for 3 timeouts: not a read timeout
    content.feed_data(b"data: 2\n\n")
    assert await body.read() == b"data: 2\n\n"
    started = asyncio.get_running_loop().time()
    with pytest.raises(aiohttp.ServerTimeoutError):
        await body.read()  # nothing comes
    assert asyncio.get_running_loop().time() - started < 1.0
    body.close()


async def test_bytes_arriving_as_the_timer_fires_are_not_a_timeout() -> None:
    content, body, _ = _reader(10.0)
    loop = asyncio.get_running_loop()
    reading = asyncio.create_task(body.read())
    await asyncio.sleep(0)  # the read is waiting
    # a loop turn in which the bytes arrive (I/O callbacks run first) and the timer is due,
    # before the reading task could run: the read has "waited" past its deadline
    body._waiting_since = loop.time() - 11.0
    content.feed_data(b"late but here")
    body._check()
    assert await reading == b"late but here"
    content.feed_data(b"next")
    assert await body.read() == b"next", "no error was left behind for the next read"
    content.feed_eof()
    assert await body.read() == b""
    body.close()


async def test_without_a_timeout_aiohttp_keeps_timing_the_body() -> None:
    content, body, connection = _reader(0.0)
    assert connection.protocol.read_timeout == 30.0
    content.feed_data(b"x")
    assert await body.read() == b"x"
    body.close()


async def test_a_sink_is_only_used_on_the_loop_that_reads_it() -> None:
    import threading

    from streamagent._token_sink import SINK_KEY, sink_of

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
    chunks = [c async for c in astream_chunks(parent.compile(), "tell me")]
    assert chunks[-1].type == "done", chunks[-1]
    assert "".join(c.content or "" for c in chunks if c.type == "content") == STORY
