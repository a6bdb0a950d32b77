"""The agent graph end to end over real HTTP (scripted server), with an in-memory saver."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import Command

from streamagent import (
    PruningConfig,
    build_agent,
    create_agent_graph,
    stream_chunks,
)
from streamagent.testing import Fault, Reply, ToolCall
from tests._support.agents import add
from tests._support.streams import collect, kinds, text
from tests.conftest import config_for


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"boom: {reason}")


@pytest.mark.smoke
async def test_plain_reply_streams_content_tokens_then_done_with_usage_and_cost(make_server):
    server = make_server(
        [Reply("Hello there, streaming world!", prompt_tokens=1000, cached_tokens=200)]
    )
    agent = build_agent(config=config_for(server), checkpointer=InMemorySaver())
    chunks = await collect(agent, "hi")
    assert kinds(chunks) == ["content", "done"]
    contents = [c.content for c in chunks if c.type == "content"]
    assert len(contents) > 3, "tokens must arrive one by one, not as one block"
    assert "".join(contents) == "Hello there, streaming world!"
    done = chunks[-1]
    assert done.usage is not None
    assert done.usage["input_tokens"] == 1000
    assert done.usage["cached_input_tokens"] == 200
    out_tokens = done.usage["output_tokens"]
    # gpt-4o: $2.50/M input, $1.25/M cached input, $10/M output
    expected = (
        Decimal(800) * Decimal("2.5") + Decimal(200) * Decimal("1.25") + Decimal(out_tokens) * 10
    ) / Decimal(1_000_000)
    assert done.cost_usd == expected
    assert done.time_to_first_token_seconds is not None
    assert (
        done.latency_seconds is not None
        and done.latency_seconds >= done.time_to_first_token_seconds
    )


@pytest.mark.smoke
async def test_tool_loop_streams_deltas_call_result_and_final_answer(make_server):
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 40}, id="call_1")]),
            Reply("The sum is 42."),
        ]
    )
    agent = build_agent(tools=[add], config=config_for(server), checkpointer=InMemorySaver())
    chunks = await collect(agent, "what is 2+40?")
    assert kinds(chunks) == ["tool_call_delta", "tool_call", "tool_result", "content", "done"]
    deltas = "".join(c.tool_call["args_delta"] for c in chunks if c.type == "tool_call_delta")
    assert json.loads(deltas) == {"a": 2, "b": 40}
    call = next(c.tool_call for c in chunks if c.type == "tool_call")
    assert call == {"id": "call_1", "name": "add", "args": {"a": 2, "b": 40}}
    result = next(c.tool_result for c in chunks if c.type == "tool_result")
    assert (
        result["tool_call_id"] == "call_1"
        and result["content"] == "42"
        and result["status"] == "success"
    )
    # the second request carried the tool result back to the model
    second = server.requests[1].messages
    assert second[-1]["role"] == "tool" and second[-1]["content"] == "42"
    assert chunks[-1].usage["requests"] == 2


async def test_parallel_tool_calls_run_concurrently_and_each_id_gets_one_message(make_server):
    calls = 3
    events: list[tuple[str, str]] = []
    all_started = asyncio.Event()

    @tool
    async def rendezvous(text: str) -> str:
        """Wait until every call of this turn has started, then echo the text."""
        events.append(("start", text))
        if len(events) == calls:
            all_started.set()
        # run one after another, the first call would wait here for ever (a hang guard ends it)
        await asyncio.wait_for(all_started.wait(), timeout=30)
        events.append(("end", text))
        return text

    server = make_server(
        [
            Reply(
                tool_calls=[
                    ToolCall("rendezvous", {"text": "a"}, id="c1"),
                    ToolCall("rendezvous", {"text": "b"}, id="c2"),
                    ToolCall("rendezvous", {"text": "c"}, id="c3"),
                ]
            ),
            Reply("done"),
        ]
    )
    agent = build_agent(tools=[rendezvous], config=config_for(server), checkpointer=InMemorySaver())
    chunks = await collect(agent, "echo three")
    results = [c.tool_result for c in chunks if c.type == "tool_result"]
    assert [r["tool_call_id"] for r in results] == ["c1", "c2", "c3"]
    assert [r["content"] for r in results] == ["a", "b", "c"], results
    assert [kind for kind, _ in events] == ["start"] * calls + ["end"] * calls, (
        f"every call started before any ended: {events}"
    )


async def test_unknown_tool_broken_args_and_tool_exception_become_error_tool_messages(make_server):
    server = make_server(
        [
            Reply(
                tool_calls=[
                    ToolCall("no_such_tool", {"x": 1}, id="u1"),
                    ToolCall("add", '{"a": 1, "b": ', id="u2"),  # truncated JSON from the model
                    ToolCall("explode", {"reason": "test"}, id="u3"),
                    ToolCall("add", {"a": "not a number", "b": 1}, id="u4"),
                ]
            ),
            Reply("I saw the errors."),
        ]
    )
    agent = build_agent(
        tools=[add, explode], config=config_for(server), checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "go", thread_id="errs")
    results = {
        c.tool_result["tool_call_id"]: c.tool_result for c in chunks if c.type == "tool_result"
    }
    assert set(results) == {"u1", "u2", "u3", "u4"}
    assert all(r["status"] == "error" for r in results.values())
    assert "unknown tool 'no_such_tool'" in results["u1"]["content"]
    assert "add" in results["u1"]["content"], "the model is told which tools exist"
    assert "not valid JSON" in results["u2"]["content"]
    assert "RuntimeError" in results["u3"]["content"] and "boom: test" in results["u3"]["content"]
    assert "invalid arguments" in results["u4"]["content"]
    assert chunks[-1].type == "done"
    # the model saw exactly one tool message per call id, in the call order
    tool_msgs = [m for m in server.requests[1].messages if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["u2", "u1", "u3", "u4"] or sorted(
        m["tool_call_id"] for m in tool_msgs
    ) == ["u1", "u2", "u3", "u4"]


async def test_tool_timeout_becomes_error_message(make_server):
    outcome: list[str] = []

    @tool
    async def never_ends(text: str) -> str:
        """Wait for ever (until cancelled)."""
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        return text

    server = make_server([Reply(tool_calls=[ToolCall("never_ends", {"text": "x"}, id="t1")]), "ok"])
    agent = build_agent(
        tools=[never_ends],
        config=config_for(server, tool_timeout_seconds=0.3),
        checkpointer=InMemorySaver(),
    )
    chunks = await collect(agent, "slow")
    result = next(c.tool_result for c in chunks if c.type == "tool_result")
    assert result["status"] == "error" and "timed out after 0.3s" in result["content"]
    assert outcome == ["cancelled"], "the timed-out call was cancelled, not left running"
    assert text(chunks) == "ok" and chunks[-1].type == "done", "the turn went on"


@pytest.mark.smoke
async def test_memory_second_turn_sends_first_turn_history(make_server):
    server = make_server(["First answer.", "Second answer."])
    agent = build_agent(config=config_for(server), checkpointer=InMemorySaver())
    await collect(agent, "first question", thread_id="mem")
    await collect(agent, "second question", thread_id="mem")
    sent = server.requests[1].messages
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "first question" and sent[1]["content"] == "First answer."


async def test_agent_nested_in_parent_graph_still_streams_tokens(make_server):
    server = make_server([Reply("nested tokens arrive one by one")])
    inner = create_agent_graph(config=config_for(server), name="inner").compile(name="inner")
    parent = StateGraph(MessagesState)
    parent.add_node("inner", inner)
    parent.add_edge(START, "inner")
    app = parent.compile(checkpointer=InMemorySaver())
    chunks = await collect(app, "hello")
    contents = [c for c in chunks if c.type == "content"]
    assert len(contents) > 3
    assert "".join(c.content for c in contents) == "nested tokens arrive one by one"
    assert all(c.namespace and c.namespace[0].startswith("inner") for c in contents)
    assert chunks[-1].type == "done" and chunks[-1].usage["requests"] == 1
    state = await app.aget_state({"configurable": {"thread_id": "t"}})
    assert isinstance(state.values["messages"][-1], AIMessage)


async def test_sync_stream_chunks_match_async(make_server):
    server = make_server([Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2})]), "three"])
    agent = build_agent(tools=[add], config=config_for(server), checkpointer=InMemorySaver())
    chunks = await asyncio.to_thread(lambda: list(stream_chunks(agent, "1+2", thread_id="sync")))
    assert kinds(chunks) == ["tool_call_delta", "tool_call", "tool_result", "content", "done"]
    assert text(chunks) == "three"


async def test_bad_input_gives_error_chunk_and_leaves_thread_intact(make_server):
    server = make_server(["fine"])
    saver = InMemorySaver()
    agent = build_agent(config=config_for(server), checkpointer=saver)
    await collect(agent, "hello", thread_id="bad")
    before = (await agent.aget_state({"configurable": {"thread_id": "bad"}})).values["messages"]
    for bad in ([], [{"role": "wizard", "content": "x"}], [{"role": "user", "content": "   "}], 42):
        chunks = await collect(agent, bad, thread_id="bad")
        assert [c.type for c in chunks] == ["error"]
        assert chunks[0].error["type"] == "InvalidInputError"
    after = (await agent.aget_state({"configurable": {"thread_id": "bad"}})).values["messages"]
    assert [m.content for m in after] == [m.content for m in before]
    assert len(server.requests) == 1


async def test_oversized_message_is_refused_and_removed_from_thread(make_server):
    server = make_server(["ok"])
    cfg = config_for(server, model="gpt-4o", context_window=2000, max_tokens=500)
    agent = build_agent(config=cfg, checkpointer=InMemorySaver())
    await collect(agent, "small", thread_id="big")
    chunks = await collect(agent, "word " * 5000, thread_id="big")
    assert chunks[-1].type == "error" and chunks[-1].error["type"] == "ContextTooLongError"
    state = await agent.aget_state({"configurable": {"thread_id": "big"}})
    assert [m.type for m in state.values["messages"]] == ["human", "ai"]
    assert len(server.requests) == 1


async def test_step_limit_stops_tool_loop_and_says_so(make_server):
    loop = Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 1})])
    server = make_server([loop, loop, loop, loop])
    agent = build_agent(
        tools=[add], config=config_for(server, max_steps=2), checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "loop forever", thread_id="steps")
    assert chunks[-1].type == "error"
    assert chunks[-1].error["type"] == "StepLimitExceededError"
    assert "max_steps=2" in chunks[-1].error["message"]
    assert len(server.requests) == 2


async def test_view_pruning_keeps_state_but_trims_model_input(make_server):
    server = make_server(["a1", "a2", "a3"])
    cfg = config_for(
        server, context_window=1200, max_tokens=200, pruning=PruningConfig(max_messages=3)
    )
    agent = build_agent(config=cfg, checkpointer=InMemorySaver())
    for i in range(3):
        await collect(agent, f"question {i}", thread_id="prune")
    last_sent = server.requests[-1].messages
    assert len(last_sent) <= 3 and last_sent[-1]["content"] == "question 2"
    state = await agent.aget_state({"configurable": {"thread_id": "prune"}})
    assert len(state.values["messages"]) == 6, "policy=view keeps the whole thread"


async def test_state_pruning_removes_old_messages_from_thread(make_server):
    server = make_server(["a1", "a2", "a3"])
    cfg = config_for(server, pruning=PruningConfig(policy="state", max_messages=2))
    agent = build_agent(config=cfg, checkpointer=InMemorySaver())
    for i in range(3):
        await collect(agent, f"q{i}", thread_id="sp")
    state = await agent.aget_state({"configurable": {"thread_id": "sp"}})
    contents = [m.content for m in state.values["messages"]]
    assert "q0" not in contents and contents[-2:] == ["q2", "a3"]


async def test_approval_interrupt_then_resume_approve_and_reject(make_server):
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("add", {"a": 1, "b": 2}, id="ap1")]),
            "approved result seen",
            Reply(tool_calls=[ToolCall("add", {"a": 5, "b": 5}, id="ap2")]),
            "rejection seen",
        ]
    )
    cfg = config_for(server, require_approval=frozenset({"add"}))
    agent = build_agent(tools=[add], config=cfg, checkpointer=InMemorySaver())
    first = await collect(agent, "add please", thread_id="ap")
    interrupt = next(c for c in first if c.type == "interrupt")
    assert interrupt.interrupt[0]["value"]["calls"][0]["id"] == "ap1"
    assert not any(c.type == "tool_result" for c in first), "nothing runs before approval"
    resumed = await collect(
        agent, None, thread_id="ap", resume={"ap1": {"action": "edit", "args": {"a": 10, "b": 2}}}
    )
    result = next(c.tool_result for c in resumed if c.type == "tool_result")
    assert result["content"] == "12"
    await collect(agent, "again", thread_id="ap")
    rejected = await collect(
        agent, None, thread_id="ap", resume={"action": "reject", "reason": "not now"}
    )
    result = next(c.tool_result for c in rejected if c.type == "tool_result")
    assert (
        result["status"] == "error"
        and "rejected" in result["content"]
        and "not now" in result["content"]
    )
    assert text(rejected) == "rejection seen"


async def test_fault_exhausted_retries_error_chunk_and_thread_continues(make_server):
    server = make_server([Fault.http(500), Fault.http(500), "recovered"])
    from streamagent import RetryConfig

    cfg = config_for(
        server, retry=RetryConfig(max_retries=1, initial_delay_seconds=0.01, jitter=False)
    )
    agent = build_agent(config=cfg, checkpointer=InMemorySaver())
    chunks = await collect(agent, "hi", thread_id="f")
    assert chunks[-1].type == "error"
    assert chunks[-1].error["type"] == "ModelUnavailableError"
    assert chunks[-1].error["attempts"] == 2 and chunks[-1].error["retryable"] is True
    again = await collect(agent, "hi again", thread_id="f")
    assert text(again) == "recovered"
    state = await agent.aget_state({"configurable": {"thread_id": "f"}})
    kinds = [type(m) for m in state.values["messages"]]
    assert kinds == [HumanMessage, HumanMessage, AIMessage]


async def test_resume_command_through_graph_api_works_without_helper(make_server):
    server = make_server([Reply(tool_calls=[ToolCall("add", {"a": 2, "b": 2}, id="g1")]), "four"])
    cfg = config_for(server, require_approval=frozenset({"add"}))
    agent = build_agent(tools=[add], config=cfg, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "cmd"}}
    await agent.ainvoke({"messages": [("user", "2+2")]}, config)
    out = await agent.ainvoke(Command(resume="approve"), config)
    assert isinstance(out["messages"][-2], ToolMessage) and out["messages"][-1].content == "four"
