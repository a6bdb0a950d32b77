"""The agent's fast paths keep its behaviour.

- ``prune`` is skipped only when its update would change nothing (checked against the node
  itself on many threads), and runs whenever the thread needs it;
- the lean transport's aiohttp sessions live and die with their event loop;
- the first token reaches a LangGraph consumer (another task) at once, even when the whole
  reply is already buffered;
- a backlog of buffered events is parsed only as it is consumed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import subprocess
import sys
from typing import Any

import httpx2
import orjson
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import AgentConfig, ModelConfig, PruningConfig, astream_chunks, build_agent
from streamagent.accounting.tokens import get_encoding
from streamagent.errors import ContextTooLongError, InvalidInputError
from streamagent.llm.lean import reader as fast_openai
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.lean.transport import READ_BUFFER_BYTES, SHARED_SESSIONS, client_timeout
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


def test_aiohttp_sessions_close_with_their_loop(make_server, caplog) -> None:
    server = make_server(["one", "two"])
    llm = LeanChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-t", max_retries=0)
    sessions = []
    for _ in range(2):

        async def run() -> str:
            text = "".join([str(c.content) async for c in llm.astream("hi")])
            assert len(llm._lean_async_clients) == 1
            sessions.append(llm._lean_async_clients.current())
            return text

        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            assert asyncio.run(run()) in ("one", "two")
        assert len(llm._lean_async_clients) == 0, "forgotten when its loop shut down"
    assert all(s is not None and s.closed for s in sessions)
    assert sessions[0] is not sessions[1], "one session per event loop"
    sessions.clear()
    gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def test_sdk_timeouts_map_to_aiohttp() -> None:
    timeout = client_timeout(httpx2.Timeout(30.0, connect=5.0, pool=2.0))
    assert (timeout.total, timeout.connect, timeout.sock_connect, timeout.sock_read) == (
        None,
        7.0,
        5.0,
        30.0,
    )
    no_limits = client_timeout(httpx2.Timeout(None))
    assert (no_limits.connect, no_limits.sock_read) == (None, None)


class _TokenCounter(BaseCallbackHandler):
    """Counts tokens inline (an async or thread-pool handler would itself yield to the loop)."""

    run_inline = True

    def __init__(self) -> None:
        self.tokens = 0

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens += 1


@pytest.fixture
def bulk_server() -> Any:
    """A scripted server in *another process* answering 3,000-token replies at full speed, so
    a whole burst of chunks is already in the client's socket buffer when it starts reading."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamagent.testing", "--port", "0", "--reply-tokens", "3000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("READY "), f"server did not start: {line!r}"
    yield line.split(" ", 1)[1]
    proc.terminate()
    proc.wait(timeout=10)


async def test_first_token_reaches_a_langgraph_consumer_before_the_burst_is_processed(
    bulk_server: str,
) -> None:
    config = AgentConfig(model=ModelConfig(base_url=bulk_server, api_key="sk-test"))
    agent = build_agent(config=config, checkpointer=False)
    for _ in range(3):
        counter = _TokenCounter()
        seen_at = None
        async for chunk in astream_chunks(
            agent, "go", thread_id="t", config={"callbacks": [counter]}
        ):
            if chunk.type == "content" and seen_at is None:
                seen_at = counter.tokens
        assert counter.tokens >= 3_000
        assert seen_at is not None and seen_at <= 10, (
            f"the consumer saw the first token after the model had streamed {seen_at}"
        )


async def test_a_proxy_from_the_environment_sends_the_call_through_the_sdk_path(
    make_server, monkeypatch
) -> None:
    # The scripted server doubles as a forward proxy (it serves absolute-form request targets):
    # the endpoint's host does not exist, so the reply proves the proxy was used.
    server = make_server(["via the proxy"])
    monkeypatch.setenv("HTTP_PROXY", server.base_url.removesuffix("/v1"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    llm = LeanChatOpenAI(
        model="gpt-4o", base_url="http://model.invalid/v1", api_key="sk-t", max_retries=0
    )
    assert llm.lean_request([HumanMessage("hi")]) is None, "proxied: not the lean transport"
    text = "".join([str(c.content) async for c in llm.astream("hi")])
    assert text == "via the proxy"
    assert len(llm._lean_async_clients) == 0


async def test_dropping_a_model_leaves_the_shared_session_open_and_quiet(
    make_server, caplog
) -> None:
    server = make_server(["one", "two"])

    async def ask() -> tuple[str, Any]:
        llm = LeanChatOpenAI(
            model="gpt-4o", base_url=server.base_url, api_key="sk-t", max_retries=0
        )
        text = "".join([str(c.content) async for c in llm.astream("hi")])
        return text, llm._lean_async_clients.current()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        first, session = await ask()
        gc.collect()  # the first model is gone; its session must not be collected with it
        second, again = await ask()
        gc.collect()
    assert (first, second) == ("one", "two")
    assert again is session and not session.closed, "one pool per loop, shared by models"
    assert len({r.peer for r in server.requests}) == 1, "the connection was reused"
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_a_backlog_is_parsed_as_it_is_consumed_and_buffered_within_the_limit(
    bulk_server: str, monkeypatch
) -> None:
    """A consumer that falls behind a burst: the buffered events stay bytes until they are
    used (a backlog of parsed dicts per stream was most of an overloaded process's memory),
    and aiohttp buffers at most its read limit per connection."""
    decoded = 0
    real_loads = orjson.loads

    def counting_loads(payload: bytes) -> Any:
        nonlocal decoded
        decoded += 1
        return real_loads(payload)

    monkeypatch.setattr(orjson, "loads", counting_loads)  # SseDecoder.feed's
    monkeypatch.setattr(fast_openai, "decode_payload", counting_loads)
    llm = LeanChatOpenAI(model="gpt-4o", base_url=bulk_server, api_key="sk-t", max_retries=0)
    seen = ahead = 0
    async for _chunk in llm.astream("go"):
        seen += 1
        if seen == 1:
            await asyncio.sleep(0.3)  # the whole burst arrives meanwhile
        ahead = max(ahead, decoded - seen)
    assert seen >= 3_000
    assert ahead <= 2, f"{ahead} events were parsed before the consumer reached them"
    session = SHARED_SESSIONS.current()
    assert session is not None and session._read_bufsize == READ_BUFFER_BYTES
