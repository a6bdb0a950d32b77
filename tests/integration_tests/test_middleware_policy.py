"""The policy for middleware that overlap streamagent's own features (``docs/middleware.md``):
one retry owner, summarization / context editing beside the prune node, LangChain's
human-in-the-loop beside streamagent's approval, call limits beside ``max_steps``."""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import (
    AgentMiddleware,
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    HumanInTheLoopMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
)
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import StreamChunk, create_agent_graph
from streamagent.config import RetryConfig
from streamagent.testing import Fault, Reply, ToolCall
from tests._support.agents import chat_model, echo
from tests._support.streams import collect, text
from tests.conftest import config_for


@tool
def shout(text: str) -> str:
    """Repeat the text in capitals."""
    return text.upper()


class PassThrough(AgentMiddleware):
    """A wrap_model_call that only calls its handler."""

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        return await handler(request)


async def _run(agent: Any, text: Any = "go", **kwargs: Any) -> list[StreamChunk]:
    return await collect(agent, text, thread_id="policy", **kwargs)


# ---------------------------------------------------------------------------- retries


async def test_without_model_retry_each_handler_call_gets_the_nodes_retries(
    make_server: Any,
) -> None:
    server = make_server([Fault.http(500), "recovered"])
    agent = create_agent_graph(config=config_for(server), middleware=[PassThrough()]).compile()
    chunks = await _run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    assert len(server.requests) == 2


async def test_fallback_comes_after_the_nodes_retries_of_the_primary(make_server: Any) -> None:
    retry = RetryConfig(max_retries=2, initial_delay_seconds=0.01, jitter=False)
    primary = make_server([Fault.http(500)] * 3)
    fallback = make_server(["from the fallback"])
    agent = create_agent_graph(
        config=config_for(primary, retry=retry),
        middleware=[ModelFallbackMiddleware(chat_model(fallback))],
    ).compile()
    chunks = await _run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    # bound: (1 + fallbacks) x the node's attempts (max_retries + 1)
    assert (len(primary.requests), len(fallback.requests)) == (3, 1)
    assert text(chunks) == "from the fallback"


async def test_model_retry_with_fallback_is_bounded_and_never_stacked(make_server: Any) -> None:
    retry = RetryConfig(max_retries=3, initial_delay_seconds=0.01, jitter=False)
    primary = make_server([Fault.http(500)] * 10)
    fallback = make_server([Fault.http(500)] * 10)
    agent = create_agent_graph(
        config=config_for(primary, retry=retry),
        middleware=[
            ModelRetryMiddleware(max_retries=1, initial_delay=0.01, jitter=False),
            ModelFallbackMiddleware(chat_model(fallback)),
        ],
    ).compile()
    chunks = await _run(agent)
    assert chunks[-1].type == "done"  # on_failure="continue": the failure becomes the answer
    answer = text(chunks)
    assert answer.startswith("Model call failed after 2 attempts")
    # ModelRetryMiddleware owns retries: the node makes one attempt per call;
    # total = (max_retries + 1) x (1 + fallbacks) = 2 x 2, not x 4 more from the node
    assert (len(primary.requests), len(fallback.requests)) == (2, 2)


async def test_a_middleware_retry_after_streamed_tokens_is_announced(make_server: Any) -> None:
    server = make_server(
        [
            Reply("partial answer that breaks", fault=Fault.disconnect(after_chunks=3)),
            "clean answer",
        ]
    )
    agent = create_agent_graph(
        config=config_for(server),
        middleware=[ModelRetryMiddleware(max_retries=1, initial_delay=0.01, jitter=False)],
    ).compile()
    chunks = await _run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    kinds = [c.type for c in chunks]
    retry_at = kinds.index("retry")
    assert "content" in kinds[:retry_at]  # tokens streamed, then withdrawn
    assert chunks[retry_at].retry is not None
    assert chunks[retry_at].retry["discard_partial_output"] is True
    after = "".join(c.content or "" for c in chunks[retry_at:] if c.type == "content")
    assert after == "clean answer"


# ---------------------------------------------------------------------------- context


def _pairs_intact(messages: list[dict[str, Any]]) -> bool:
    """Every tool message in a request follows the assistant message that made its call."""
    called: set[str] = set()
    for message in messages:
        if message.get("role") == "assistant":
            called.update(c["id"] for c in message.get("tool_calls") or [])
        if message.get("role") == "tool" and message.get("tool_call_id") not in called:
            return False
    return True


def _turns(n: int) -> list[Any]:
    """``n`` user turns, each a tool call with a long result, then a short answer."""
    script: list[Any] = []
    for i in range(n):
        text = f"result {i} " + "word " * 40
        script += [Reply(tool_calls=[ToolCall("echo", {"text": text}, id=f"c{i}")]), f"answer {i}"]
    return script


async def _converse(agent: Any, n: int) -> list[dict[str, Any]]:
    """Run ``n`` turns; the prune node's view after each (its ``context_view``)."""
    views = []
    for i in range(n):
        chunks = await collect(agent, f"question {i}", thread_id="ctx")
        assert chunks[-1].type == "done", chunks[-1]
        state = (await agent.aget_state({"configurable": {"thread_id": "ctx"}})).values
        views.append(dict(state.get("context_view") or {}))
    return views


async def test_summarization_and_prune_both_run_and_never_split_pairs(make_server: Any) -> None:
    server = make_server(_turns(4))
    summary = make_server(["SHORT SUMMARY"] * 3)
    agent = create_agent_graph(
        tools=[echo],
        config=config_for(server, context_window=450, max_tokens=200),
        middleware=[
            SummarizationMiddleware(
                model=chat_model(summary), trigger=("messages", 10), keep=("messages", 4)
            )
        ],
    ).compile(checkpointer=InMemorySaver())
    views = await _converse(agent, 4)
    assert len(summary.requests) >= 1  # summarization ran
    assert any(v.get("kept_ids") is not None for v in views)  # and the prune node trimmed
    assert any("SHORT SUMMARY" in str(r.messages) for r in server.requests)
    assert all(_pairs_intact(r.messages) for r in server.requests)


async def test_context_editing_and_prune_never_split_pairs(make_server: Any) -> None:
    server = make_server(_turns(4))
    agent = create_agent_graph(
        tools=[echo],
        config=config_for(server, context_window=450, max_tokens=200),
        middleware=[ContextEditingMiddleware(edits=[ClearToolUsesEdit(trigger=100, keep=0)])],
    ).compile(checkpointer=InMemorySaver())
    views = await _converse(agent, 4)
    assert any(v.get("kept_ids") is not None for v in views)
    assert any("[cleared]" in str(r.messages) for r in server.requests)
    assert all(_pairs_intact(r.messages) for r in server.requests)


# ---------------------------------------------------------------------------- approval


def _interrupt(chunks: list[StreamChunk]) -> dict[str, Any]:
    found = [c for c in chunks if c.type == "interrupt"]
    assert len(found) == 1, [c.type for c in chunks]
    assert not [c for c in chunks if c.type == "tool_result"]  # nothing ran before the answer
    assert found[0].interrupt is not None
    return dict(found[0].interrupt[0]["value"])


def _echo_and_shout_then(answer: str) -> list[Any]:
    """A script: the model calls ``echo`` and ``shout`` at once, then answers."""
    calls = [ToolCall("echo", {"text": "a"}, id="c1"), ToolCall("shout", {"text": "b"}, id="c2")]
    return [Reply(tool_calls=calls), answer]


async def test_hitl_and_streamagent_approval_both_interrupt_and_resume(make_server: Any) -> None:
    server = make_server(_echo_and_shout_then("finished"))
    agent = create_agent_graph(
        tools=[echo, shout],
        config=config_for(server, require_approval=frozenset({"echo"})),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"shout": True})],
    ).compile(checkpointer=InMemorySaver())
    first = await _run(agent)
    hitl = _interrupt(first)
    assert [r["name"] for r in hitl["action_requests"]] == ["shout"]
    second = await _run(agent, None, resume={"decisions": [{"type": "approve"}]})
    ours = _interrupt(second)
    assert ours["type"] == "tool_approval"
    assert [c["name"] for c in ours["calls"]] == ["echo"]
    third = await _run(agent, None, resume="approve")
    assert third[-1].type == "done", third[-1]
    results = {
        c.tool_result["tool_call_id"]: c.tool_result for c in third if c.type == "tool_result"
    }
    assert results["c1"]["content"] == "a"
    assert results["c2"]["content"] == "B"


# ---------------------------------------------------------------------------- limits


def _loop(n: int) -> list[Any]:
    return [Reply(tool_calls=[ToolCall("echo", {"text": str(i)}, id=f"l{i}")]) for i in range(n)]


async def test_a_call_limit_under_max_steps_ends_the_run_gracefully(make_server: Any) -> None:
    server = make_server(_loop(10))
    agent = create_agent_graph(
        tools=[echo],
        config=config_for(server, max_steps=5),
        middleware=[ModelCallLimitMiddleware(run_limit=2, exit_behavior="end")],
    ).compile(checkpointer=InMemorySaver())
    chunks = await _run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    assert len(server.requests) == 2


async def test_max_steps_under_a_call_limit_stops_with_its_error(make_server: Any) -> None:
    server = make_server(_loop(10))
    agent = create_agent_graph(
        tools=[echo],
        config=config_for(server, max_steps=2),
        middleware=[ModelCallLimitMiddleware(run_limit=5, exit_behavior="end")],
    ).compile(checkpointer=InMemorySaver())
    chunks = await _run(agent)
    assert chunks[-1].type == "error"
    assert chunks[-1].error is not None
    assert chunks[-1].error["type"] == "StepLimitExceededError"
    assert len(server.requests) == 2


class Rewrite(AgentMiddleware):
    """after_model: writes the AI message back with one call's arguments changed."""

    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        last = state["messages"][-1]
        if not last.tool_calls:
            return None
        calls = [
            {**c, "args": {"text": "changed"}} if c["id"] == "c2" else c for c in last.tool_calls
        ]
        return {"messages": [last.model_copy(update={"tool_calls": calls})]}


async def test_a_rewritten_ai_message_reports_only_changed_calls_again(make_server: Any) -> None:
    server = make_server(_echo_and_shout_then("finished"))
    agent = create_agent_graph(
        tools=[echo, shout], config=config_for(server), middleware=[Rewrite()]
    ).compile(checkpointer=InMemorySaver())
    chunks = await _run(agent)
    assert chunks[-1].type == "done", chunks[-1]
    calls = [(c.tool_call["id"], c.tool_call["args"]) for c in chunks if c.type == "tool_call"]
    assert calls == [("c1", {"text": "a"}), ("c2", {"text": "b"}), ("c2", {"text": "changed"})]
    results = {
        c.tool_result["tool_call_id"]: c.tool_result["content"]
        for c in chunks
        if c.type == "tool_result"
    }
    assert results == {"c1": "a", "c2": "CHANGED"}
