"""Run the same scripted conversation through streamagent (``astream_chunks``) and through
LangChain's ``create_agent``, each on its own scripted server with the same script, and reduce
what they end with to comparable values (messages without ids/timing, the requests the model
received, the middleware's state keys)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from streamagent import StreamChunk, astream_chunks, create_agent_graph
from streamagent.testing import ScriptedOpenAIServer
from tests._support.agents import chat_model
from tests.conftest import config_for

#: script items for the agent's model; extra servers (summary / fallback / selector models)
Servers = Callable[..., ScriptedOpenAIServer]
#: builds the middleware from the run's extra servers (one fresh set per agent)
MiddlewareFactory = Callable[[dict[str, ScriptedOpenAIServer]], list[Any]]


def message_view(message: BaseMessage) -> tuple[Any, ...]:
    """A message as both agents must agree on it: type, text, tool calls, tool answers."""
    if isinstance(message, AIMessage):
        calls = tuple((c["name"], tuple(sorted(c["args"].items()))) for c in message.tool_calls)
        return ("ai", message.text, calls)
    if isinstance(message, ToolMessage):
        return ("tool", message.tool_call_id, str(message.content), message.status)
    return (message.type, message.text)


def request_view(server: ScriptedOpenAIServer) -> list[list[tuple[str, str]]]:
    """What the model received on each request: (role, content) per message, then the names
    of the tools it was offered as one ("tools", names) entry."""
    out = []
    for request in server.requests:
        seen = [(m.get("role", ""), str(m.get("content") or "")) for m in request.messages]
        body = request.body if isinstance(request.body, dict) else {}
        names = sorted(t.get("function", {}).get("name", "") for t in body.get("tools") or [])
        out.append([*seen, ("tools", ",".join(names))])
    return out


@dataclass
class Outcome:
    messages: list[tuple[Any, ...]]
    state: dict[str, Any]
    requests: list[list[tuple[str, str]]]
    extra_requests: dict[str, int]
    interrupts: list[Any] = field(default_factory=list)
    chunks: list[StreamChunk] = field(default_factory=list)


def _extras(
    make_server: Servers, extra: dict[str, Sequence[Any]]
) -> dict[str, ScriptedOpenAIServer]:
    return {name: make_server(list(script)) for name, script in extra.items()}


def _state_view(values: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: values.get(k) for k in keys}


async def run_streamagent(
    make_server: Servers,
    script: Sequence[Any],
    *,
    tools: Sequence[Any],
    middleware: MiddlewareFactory,
    turns: Sequence[Any],
    extra: dict[str, Sequence[Any]] | None = None,
    state_keys: Sequence[str] = (),
    system_prompt: str | None = None,
    **config: Any,
) -> Outcome:
    """``turns``: user texts, or ``Command(resume=...)`` values to resume an interrupt."""
    server = make_server(list(script))
    extras = _extras(make_server, extra or {})
    agent = create_agent_graph(
        tools=tools,
        config=config_for(server, system_prompt=system_prompt, **config),
        middleware=middleware(extras),
    ).compile(checkpointer=InMemorySaver())
    chunks: list[StreamChunk] = []
    for turn in turns:
        if isinstance(turn, Command):
            stream = astream_chunks(agent, None, thread_id="diff", resume=turn.resume)
        else:
            stream = astream_chunks(agent, turn, thread_id="diff")
        chunks.extend([c async for c in stream])
    snapshot = await agent.aget_state({"configurable": {"thread_id": "diff"}})
    values = snapshot.values
    return Outcome(
        messages=[message_view(m) for m in values["messages"]],
        state=_state_view(values, state_keys),
        requests=request_view(server),
        extra_requests={k: len(s.requests) for k, s in extras.items()},
        interrupts=[i["value"] for c in chunks if c.type == "interrupt" for i in c.interrupt or []],
        chunks=chunks,
    )


async def run_langchain(
    make_server: Servers,
    script: Sequence[Any],
    *,
    tools: Sequence[Any],
    middleware: MiddlewareFactory,
    turns: Sequence[Any],
    extra: dict[str, Sequence[Any]] | None = None,
    state_keys: Sequence[str] = (),
    system_prompt: str | None = None,
    **_config: Any,
) -> Outcome:
    server = make_server(list(script))
    extras = _extras(make_server, extra or {})
    agent = create_agent(
        chat_model(server),
        list(tools),
        system_prompt=system_prompt,
        middleware=middleware(extras),
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "diff"}}
    interrupts: list[Any] = []
    for turn in turns:
        graph_input = turn if isinstance(turn, Command) else {"messages": [HumanMessage(turn)]}
        async for update in agent.astream(graph_input, config, stream_mode="updates"):
            if "__interrupt__" in update:
                interrupts.extend(i.value for i in update["__interrupt__"])
    values = (await agent.aget_state(config)).values
    return Outcome(
        messages=[message_view(m) for m in values["messages"]],
        state=_state_view(values, state_keys),
        requests=request_view(server),
        extra_requests={k: len(s.requests) for k, s in extras.items()},
        interrupts=interrupts,
    )


async def differential(make_server: Servers, script: Sequence[Any], **kwargs: Any) -> Outcome:
    """Run both agents; assert they agree; return streamagent's outcome for further checks."""
    ours = await run_streamagent(make_server, script, **kwargs)
    theirs = await run_langchain(make_server, script, **kwargs)
    assert ours.messages == theirs.messages
    assert ours.requests == theirs.requests
    assert ours.state == theirs.state
    assert ours.extra_requests == theirs.extra_requests
    assert ours.interrupts == theirs.interrupts
    errors = [c for c in ours.chunks if c.type == "error"]
    assert not errors, errors
    return ours
