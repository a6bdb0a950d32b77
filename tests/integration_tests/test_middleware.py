"""``middleware=`` on streamagent's graph: hook order (against ``create_agent``), jumps,
``wrap_model_call`` streaming and accounting, ``dynamic_prompt``, merged state, middleware
tools, the sync path, the graph without middleware, and the missing extra."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, NotRequired

from langchain.agents import create_agent
from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    before_model,
    dynamic_prompt,
    hook_config,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import build_agent, create_agent_graph, stream_chunks
from streamagent.testing import Reply, ToolCall
from tests._support.agents import chat_model, echo
from tests._support.streams import collect, text
from tests.conftest import config_for
from tests.integration_tests._middleware_diff import differential


class Recorder(AgentMiddleware):
    """Records every hook it runs into a shared log (sync and async)."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    @property
    def name(self) -> str:
        return f"Recorder{self.label}"

    def _note(self, what: str) -> None:
        self.log.append(f"{self.label}.{what}")

    def before_agent(self, state: Any, runtime: Any) -> None:
        self._note("before_agent")

    def before_model(self, state: Any, runtime: Any) -> None:
        self._note("before_model")

    def after_model(self, state: Any, runtime: Any) -> None:
        self._note("after_model")

    def after_agent(self, state: Any, runtime: Any) -> None:
        self._note("after_agent")

    def wrap_model_call(self, request: Any, handler: Any) -> Any:
        self._note("wrap_model:in")
        response = handler(request)
        self._note("wrap_model:out")
        return response

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        self._note("wrap_model:in")
        response = await handler(request)
        self._note("wrap_model:out")
        return response

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        self._note("wrap_tool:in")
        result = handler(request)
        self._note("wrap_tool:out")
        return result

    async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
        self._note("wrap_tool:in")
        result = await handler(request)
        self._note("wrap_tool:out")
        return result


def _script() -> list[Any]:
    return [Reply(tool_calls=[ToolCall("echo", {"text": "hi"}, id="c1")]), "bye"]


async def test_hooks_run_in_create_agents_order(make_server: Any) -> None:
    ours: list[str] = []
    server = make_server(_script())
    agent = create_agent_graph(
        tools=[echo],
        config=config_for(server),
        middleware=[Recorder("A", ours), Recorder("B", ours)],
    ).compile(checkpointer=InMemorySaver())
    chunks = await collect(agent, "go", thread_id="order")
    assert chunks[-1].type == "done"

    theirs: list[str] = []
    reference = create_agent(
        chat_model(make_server(_script())),
        [echo],
        middleware=[Recorder("A", theirs), Recorder("B", theirs)],
    )
    await reference.ainvoke({"messages": [HumanMessage("go")]})
    assert ours == theirs
    assert ours[:4] == ["A.before_agent", "B.before_agent", "A.before_model", "B.before_model"]
    assert ours[-2:] == ["B.after_agent", "A.after_agent"]


def test_hooks_run_in_order_on_the_sync_path(make_server: Any) -> None:
    log: list[str] = []
    server = make_server(_script())
    agent = create_agent_graph(
        tools=[echo], config=config_for(server), middleware=[Recorder("A", log)]
    ).compile(checkpointer=InMemorySaver())
    chunks = list(stream_chunks(agent, "go", thread_id="sync"))
    assert chunks[-1].type == "done", chunks[-1]
    assert text(chunks) == "bye"
    assert log.count("A.wrap_tool:in") == 1
    assert log.count("A.wrap_model:in") == 2
    assert log[-1] == "A.after_agent"


async def test_before_model_jump_to_end_skips_the_model(make_server: Any) -> None:
    @before_model(can_jump_to=["end"])
    def refuse(state: Any, runtime: Any) -> dict[str, Any]:
        return {"jump_to": "end", "messages": [AIMessage("refused before the model")]}

    server = make_server(["never"])
    agent = create_agent_graph(config=config_for(server), middleware=[refuse]).compile(
        checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "go", thread_id="jump")
    assert chunks[-1].type == "done"
    assert server.requests == []
    state = await agent.aget_state({"configurable": {"thread_id": "jump"}})
    assert state.values["messages"][-1].text == "refused before the model"


class CallTwice(AgentMiddleware):
    """Calls the model twice and keeps the second answer (both calls cost)."""

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        await handler(request)
        return await handler(request)


async def test_wrap_model_call_streams_and_every_call_is_accounted(make_server: Any) -> None:
    server = make_server(
        [Reply("first", prompt_tokens=10, completion_tokens=1), Reply("second", prompt_tokens=10)]
    )
    agent = create_agent_graph(config=config_for(server), middleware=[CallTwice()]).compile(
        checkpointer=InMemorySaver()
    )
    chunks = await collect(agent, "go", thread_id="twice")
    answer = text(chunks)
    assert answer == "firstsecond"  # both calls streamed their tokens
    done = chunks[-1]
    assert done.type == "done"
    assert done.usage is not None and done.usage["requests"] == 2
    assert done.usage["input_tokens"] == 20
    state = (await agent.aget_state({"configurable": {"thread_id": "twice"}})).values
    assert state["usage"]["requests"] == 2
    assert state["cost_usd"] is not None and state["cost_usd"] > 0
    assert [m.text for m in state["messages"]] == ["go", "second"]


async def test_dynamic_prompt_sets_the_system_message(make_server: Any) -> None:
    @dynamic_prompt
    def prompt(request: ModelRequest) -> str:
        return f"You answer {len(request.messages)} message(s)."

    server = make_server(["ok"])
    agent = create_agent_graph(
        config=config_for(server, system_prompt="static prompt"), middleware=[prompt]
    ).compile()
    chunks = await collect(agent, "go", thread_id=None)
    assert chunks[-1].type == "done"
    assert server.requests[0].messages[0] == {
        "role": "system",
        "content": "You answer 1 message(s).",
    }


class CounterState(AgentState):
    model_calls_seen: NotRequired[int]


@tool
def ping() -> str:
    """Answer pong."""
    return "pong"


class Counting(AgentMiddleware[CounterState]):
    """Brings a state key and a tool."""

    state_schema = CounterState
    tools = [ping]  # noqa: RUF012

    def before_model(self, state: Any, runtime: Any) -> dict[str, Any]:
        return {"model_calls_seen": int(state.get("model_calls_seen") or 0) + 1}


async def test_middleware_state_and_tools_join_the_agent(make_server: Any) -> None:
    server = make_server([Reply(tool_calls=[ToolCall("ping", {}, id="p1")]), "done"])
    agent = create_agent_graph(tools=[echo], config=config_for(server), middleware=[Counting()])
    app = agent.compile(checkpointer=InMemorySaver())
    chunks = await collect(app, "go", thread_id="state")
    results = [c.tool_result for c in chunks if c.type == "tool_result"]
    assert results == [
        {"tool_call_id": "p1", "name": "ping", "content": "pong", "status": "success"}
    ]
    offered = sorted(t["function"]["name"] for t in server.requests[0].body["tools"])
    assert offered == ["echo", "ping"]
    state = (await app.aget_state({"configurable": {"thread_id": "state"}})).values
    assert state["model_calls_seen"] == 2
    assert state["usage"]["requests"] == 2  # streamagent's own keys are still there


def _edges(graph: Any) -> list[tuple[str, str, bool]]:
    return sorted((e.source, e.target, e.conditional) for e in graph.compile().get_graph().edges)


def test_without_middleware_the_graph_is_unchanged(make_server: Any) -> None:
    server = make_server()
    cfg = config_for(server)
    plain = create_agent_graph(tools=[echo], config=cfg)
    empty = create_agent_graph(tools=[echo], config=cfg, middleware=[])
    assert sorted(plain.nodes) == sorted(empty.nodes) == ["model", "prune", "tools"]
    assert _edges(plain) == _edges(empty)
    assert _edges(plain) == [
        ("__start__", "model", True),
        ("__start__", "prune", True),
        ("model", "__end__", True),
        ("model", "tools", True),
        ("prune", "model", False),
        ("tools", "model", True),
        ("tools", "prune", True),
    ]
    # the same node classes as before middleware existed (no wrapping layer)
    assert type(plain.nodes["model"].runnable).__name__ == "NodeRunnable"
    assert "MiddlewareModelNode" not in repr(plain.nodes["model"].runnable.afunc)  # type: ignore[attr-defined]


def test_build_agent_takes_middleware(make_server: Any) -> None:
    log: list[str] = []
    server = make_server(["hello"])
    agent = build_agent(
        config=config_for(server), checkpointer=False, middleware=[Recorder("A", log)]
    )
    assert "RecorderA.before_model" in agent.nodes
    chunks = list(stream_chunks(agent, "hi"))
    assert chunks[-1].type == "done"
    assert log[0] == "A.before_agent"


def test_without_langchain_middleware_raises_a_clear_error() -> None:
    code = (
        "import sys\n"
        "sys.modules['langchain'] = None\n"  # as if the extra were not installed
        "from streamagent import AgentConfig, ModelConfig, create_agent_graph\n"
        "from streamagent.errors import MissingExtraError, ConfigurationError\n"
        "cfg = AgentConfig(model=ModelConfig(api_key='sk-x'))\n"
        "assert sorted(create_agent_graph(config=cfg).nodes) == ['model', 'prune', 'tools']\n"
        "try:\n"
        "    create_agent_graph(config=cfg, middleware=[object()])\n"
        "except MissingExtraError as exc:\n"
        "    assert isinstance(exc, ConfigurationError) and exc.extra == 'middleware'\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('no error')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'streamagent[middleware]'" in done.stdout


def test_middleware_must_be_agent_middleware(make_server: Any) -> None:
    import pytest

    from streamagent.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="AgentMiddleware instances"):
        create_agent_graph(config=config_for(make_server()), middleware=[object()])
    with pytest.raises(ConfigurationError, match="duplicate middleware"):
        create_agent_graph(
            config=config_for(make_server()),
            middleware=[Recorder("A", []), Recorder("A", [])],
        )


def test_build_agent_counts_hook_nodes_in_its_recursion_limit(make_server: Any) -> None:
    script = [
        Reply(tool_calls=[ToolCall("echo", {"text": str(i)}, id=f"r{i}")]) for i in range(3)
    ] + ["end"]
    server = make_server(script)
    log: list[str] = []
    agent = build_agent(
        tools=[echo],
        config=config_for(server, max_steps=4),
        checkpointer=False,
        middleware=[Recorder("A", log), Recorder("B", log), Recorder("C", log)],
    )
    # 4 model calls with 3 before_model + 3 after_model hooks each exceed 4 * 3 + 3 steps
    chunks = list(stream_chunks(agent, "loop"))
    assert chunks[-1].type == "done", chunks[-1]
    assert len(server.requests) == 4


class SeesContext(AgentMiddleware):
    """A sync wrap_tool_call that reads the run's context through the request's runtime."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def wrap_tool_call(self, request: Any, handler: Any) -> Any:
        self.seen.append(request.runtime.context)
        return handler(request)


def test_sync_wrap_tool_call_sees_the_runs_context(make_server: Any) -> None:
    server = make_server(_script())
    middleware = SeesContext()
    agent = create_agent_graph(
        tools=[echo], config=config_for(server), middleware=[middleware]
    ).compile()
    chunks = list(stream_chunks(agent, "go", context={"user": "ada"}))
    assert chunks[-1].type == "done", chunks[-1]
    assert middleware.seen == [{"user": "ada"}]


class RetryOnce(AgentMiddleware):
    """after_model: the first answer is sent back with a nudge (jump_to model)."""

    @hook_config(can_jump_to=["model"])
    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if sum(isinstance(m, AIMessage) for m in state["messages"]) == 1:
            return {"messages": [HumanMessage("be more precise")], "jump_to": "model"}
        return None


class Gate(AgentMiddleware):
    """before_agent: a run that starts with "stop" ends at once (jump_to end)."""

    @hook_config(can_jump_to=["end"])
    def before_agent(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        if state["messages"][-1].text.startswith("stop"):
            return {"messages": [AIMessage("stopped by the gate")], "jump_to": "end"}
        return None


async def test_after_model_jump_to_model_as_create_agent(make_server: Any) -> None:
    ours = await differential(
        make_server,
        ["roughly 3", "exactly 3.14"],
        tools=[echo],
        middleware=lambda _: [RetryOnce()],
        turns=["what is pi"],
    )
    assert [m[0] for m in ours.messages] == ["human", "ai", "human", "ai"]
    assert ours.messages[-1] == ("ai", "exactly 3.14", ())


async def test_before_agent_jump_to_end_as_create_agent(make_server: Any) -> None:
    ours = await differential(
        make_server,
        ["answered"],
        tools=[echo],
        middleware=lambda _: [Gate()],
        turns=["stop now", "go on"],
    )
    assert ours.messages == [
        ("human", "stop now"),
        ("ai", "stopped by the gate", ()),
        ("human", "go on"),
        ("ai", "answered", ()),
    ]


class NoteState(AgentState):
    calls_noted: NotRequired[int]


class NoteCalls(AgentMiddleware[NoteState]):
    """wrap_model_call returning an ExtendedModelResponse: the response plus a state update."""

    state_schema = NoteState

    async def awrap_model_call(self, request: Any, handler: Any) -> Any:
        from langchain.agents.middleware import ExtendedModelResponse
        from langgraph.types import Command

        response = await handler(request)
        seen = int(request.state.get("calls_noted") or 0)
        return ExtendedModelResponse(
            model_response=response, command=Command(update={"calls_noted": seen + 1})
        )


async def test_wrap_model_call_commands_update_the_state_as_create_agent(make_server: Any) -> None:
    ours = await differential(
        make_server,
        _script(),
        tools=[echo],
        middleware=lambda _: [NoteCalls()],
        turns=["go"],
        state_keys=["calls_noted"],
    )
    assert ours.state == {"calls_noted": 2}
    done = ours.chunks[-1]
    assert done.type == "done" and done.usage is not None and done.usage["requests"] == 2
