"""Each built-in LangChain middleware that needs no outside service, run by streamagent's graph
through ``astream_chunks`` and by LangChain's ``create_agent`` over the same scripted model:
the same final messages, the same requests to the model, the same middleware state.
"""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware import (
    ClearToolUsesEdit,
    ContextEditingMiddleware,
    HumanInTheLoopMiddleware,
    LLMToolSelectorMiddleware,
    ModelCallLimitMiddleware,
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    PIIMiddleware,
    SummarizationMiddleware,
    TodoListMiddleware,
    ToolCallLimitMiddleware,
    ToolRetryMiddleware,
)
from langchain_core.tools import tool
from langgraph.types import Command

from streamagent.testing import Fault, Reply, ToolCall
from tests._support.agents import chat_model, echo
from tests.integration_tests._middleware_diff import differential


@tool
def shout(text: str) -> str:
    """Repeat the text in capitals."""
    return text.upper()


def _call(name: str, text: str, call_id: str) -> Reply:
    return Reply(tool_calls=[ToolCall(name, {"text": text}, id=call_id)])


async def test_human_in_the_loop_approve_and_reject(make_server: Any) -> None:
    script = [
        Reply(
            tool_calls=[
                ToolCall("echo", {"text": "a"}, id="c1"),
                ToolCall("shout", {"text": "b"}, id="c2"),
                ToolCall("echo", {"text": "c"}, id="c3"),
            ]
        ),
        "finished",
    ]

    def middleware(_: Any) -> list[Any]:
        return [HumanInTheLoopMiddleware(interrupt_on={"echo": True, "shout": True})]

    edit = {"type": "edit", "edited_action": {"name": "echo", "args": {"text": "edited"}}}
    decisions = {
        "decisions": [
            {"type": "approve"},
            {"type": "reject", "message": "no shouting"},
            edit,
        ]
    }
    ours = await differential(
        make_server,
        script,
        tools=[echo, shout],
        middleware=middleware,
        turns=["go", Command(resume=decisions)],
    )
    assert ours.interrupts and ours.interrupts[0]["action_requests"][0]["name"] == "echo"
    assert ours.messages[-1] == ("ai", "finished", ())
    assert ("tool", "c1", "a", "success") in ours.messages
    assert [m for m in ours.messages if m[:2] == ("tool", "c2")][0][3] == "error"
    edited = [m for m in ours.messages if m[:2] == ("tool", "c3")][0]
    assert edited[2].endswith("edited") and edited[3] == "success"  # ran with the new args


async def test_summarization_replaces_old_turns_with_a_summary(make_server: Any) -> None:
    script = [_call("echo", "one", "c1"), _call("echo", "two", "c2"), "all done"]

    def middleware(servers: Any) -> list[Any]:
        return [
            SummarizationMiddleware(
                model=chat_model(servers["summary"]),
                trigger=("messages", 4),
                keep=("messages", 2),
            )
        ]

    ours = await differential(
        make_server,
        script,
        tools=[echo],
        middleware=middleware,
        turns=["start"],
        extra={"summary": ["SUMMARY OF EARLIER TURNS"]},
    )
    assert ours.extra_requests == {"summary": 1}
    assert any("SUMMARY OF EARLIER TURNS" in str(m) for m in ours.messages)
    # the summary text was not streamed as the agent's answer
    assert "SUMMARY" not in "".join(c.content or "" for c in ours.chunks if c.type == "content")


async def test_context_editing_clears_old_tool_results(make_server: Any) -> None:
    script = [
        _call("echo", "first result " * 20, "c1"),
        _call("echo", "second result " * 20, "c2"),
        "done",
    ]

    def middleware(_: Any) -> list[Any]:
        return [ContextEditingMiddleware(edits=[ClearToolUsesEdit(trigger=60, keep=1)])]

    ours = await differential(
        make_server, script, tools=[echo], middleware=middleware, turns=["go"]
    )
    assert ("tool", "[cleared]") in ours.requests[-1]


async def test_model_call_limit_ends_the_run(make_server: Any) -> None:
    script = [_call("echo", "x", "c1"), _call("echo", "y", "c2"), "never reached"]

    def middleware(_: Any) -> list[Any]:
        return [ModelCallLimitMiddleware(run_limit=2, exit_behavior="end")]

    ours = await differential(
        make_server,
        script,
        tools=[echo],
        middleware=middleware,
        turns=["go"],
        state_keys=["thread_model_call_count"],
    )
    assert len(ours.requests) == 2
    assert "limit" in ours.messages[-1][1].lower()


async def test_tool_call_limit_blocks_calls_over_the_limit(make_server: Any) -> None:
    script = [
        Reply(
            tool_calls=[
                ToolCall("echo", {"text": "1"}, id="c1"),
                ToolCall("echo", {"text": "2"}, id="c2"),
            ]
        ),
        "ok",
    ]

    def middleware(_: Any) -> list[Any]:
        return [ToolCallLimitMiddleware(tool_name="echo", run_limit=1, exit_behavior="continue")]

    ours = await differential(
        make_server,
        script,
        tools=[echo],
        middleware=middleware,
        turns=["go"],
        state_keys=["thread_tool_call_count"],
    )
    statuses = {m[1]: m[3] for m in ours.messages if m[0] == "tool"}
    assert statuses == {"c1": "success", "c2": "error"}


async def test_model_fallback_uses_the_next_model(make_server: Any) -> None:
    script = [Fault.http(400)]  # not retryable: straight to the fallback

    def middleware(servers: Any) -> list[Any]:
        return [ModelFallbackMiddleware(chat_model(servers["fallback"]))]

    ours = await differential(
        make_server,
        script,
        tools=[echo],
        middleware=middleware,
        turns=["go"],
        extra={"fallback": ["from the fallback"]},
    )
    assert ours.messages[-1] == ("ai", "from the fallback", ())
    assert ours.extra_requests == {"fallback": 1}


async def test_model_retry_owns_the_retries(make_server: Any) -> None:
    script = [Fault.http(500), Fault.http(500), "third time lucky"]

    def middleware(_: Any) -> list[Any]:
        return [ModelRetryMiddleware(max_retries=2, initial_delay=0.01, jitter=False)]

    ours = await differential(
        make_server, script, tools=[echo], middleware=middleware, turns=["go"]
    )
    assert len(ours.requests) == 3  # the middleware's 1 + 2, not stacked with the node's
    assert ours.messages[-1] == ("ai", "third time lucky", ())


class _Flaky:
    """A tool that fails its first call of each agent run."""

    def __init__(self) -> None:
        self.calls = 0

    def tool(self) -> Any:
        @tool
        def flaky(text: str) -> str:
            """Sometimes fails."""
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("transient")
            return f"ok {text}"

        return flaky


async def test_tool_retry_retries_a_failing_tool(make_server: Any) -> None:
    script = [Reply(tool_calls=[ToolCall("flaky", {"text": "t"}, id="c1")]), "done"]
    tools_ours, tools_theirs = _Flaky(), _Flaky()
    flaky = [tools_ours.tool(), tools_theirs.tool()]
    used: list[Any] = []

    def middleware(_: Any) -> list[Any]:
        return [ToolRetryMiddleware(max_retries=2, initial_delay=0.01, jitter=False)]

    # the two runs need their own tool (its failure count); same name and behaviour
    from tests.integration_tests import _middleware_diff as diff

    ours = await diff.run_streamagent(
        make_server, script, tools=[flaky[0]], middleware=middleware, turns=["go"]
    )
    theirs = await diff.run_langchain(
        make_server, script, tools=[flaky[1]], middleware=middleware, turns=["go"]
    )
    used.extend([tools_ours.calls, tools_theirs.calls])
    assert ours.messages == theirs.messages
    assert ours.requests == theirs.requests
    assert used == [2, 2]
    assert ("tool", "c1", "ok t", "success") in ours.messages


async def test_pii_redacts_the_input(make_server: Any) -> None:
    def middleware(_: Any) -> list[Any]:
        return [PIIMiddleware("email", strategy="redact", apply_to_input=True)]

    ours = await differential(
        make_server,
        ["noted"],
        tools=[echo],
        middleware=middleware,
        turns=["mail me at jane@example.com"],
    )
    assert "jane@example.com" not in str(ours.requests)
    assert "[REDACTED_EMAIL]" in str(ours.requests)


async def test_todo_list_tool_writes_todos(make_server: Any) -> None:
    todos = [{"content": "write tests", "status": "in_progress"}]
    script = [
        Reply(tool_calls=[ToolCall("write_todos", {"todos": todos}, id="t1")]),
        "planned",
    ]

    def middleware(_: Any) -> list[Any]:
        return [TodoListMiddleware()]

    ours = await differential(
        make_server,
        script,
        tools=[echo],
        middleware=middleware,
        turns=["plan"],
        state_keys=["todos"],
    )
    assert ours.state["todos"] == todos
    # the middleware's prompt reached the model
    assert ours.requests[0][0][0] == "system"
    assert "write_todos" in ours.requests[0][-1][1]


async def test_llm_tool_selector_narrows_the_tools(make_server: Any) -> None:
    def middleware(servers: Any) -> list[Any]:
        return [LLMToolSelectorMiddleware(model=chat_model(servers["selector"]), max_tools=1)]

    ours = await differential(
        make_server,
        [_call("shout", "hey", "c1"), "HEY"],
        tools=[echo, shout],
        middleware=middleware,
        turns=["shout hey"],
        extra={"selector": ['{"tools": ["shout"]}', '{"tools": ["shout"]}']},
    )
    assert ours.extra_requests == {"selector": 2}
    assert ours.messages[-1] == ("ai", "HEY", ())
    assert ours.requests[0][-1] == ("tools", "shout")  # echo was left out
