"""The agent's graph with middleware hooks as nodes, wired as ``create_agent`` wires them.

::

    START → before_agent… → before_model… → [prune] → model → after_model… (last first)
          ↑                     ↑                                  │
          │                     └──────── tools ◄── pending calls ─┤
          │                                                        └─► after_agent… → END

* ``before_agent`` hooks run once per run, in registration order; ``before_model`` hooks before
  every model call, in order; ``after_model`` hooks after every model call, in *reverse* order;
  ``after_agent`` hooks once at the end, in reverse order (LangChain's documented order).
* ``jump_to`` ("model", "tools", "end") is honoured on hooks that declare ``can_jump_to``:
  "model" goes to the first ``before_model`` hook (or the model), "end" to the ``after_agent``
  hooks (or END), "tools" to the tool router.
* The prune node sits between the last ``before_model`` hook and the model: it sees what
  summarization / context editing left and keeps the model's input in its budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from streamagent.config import AgentConfig
from streamagent.middleware._model import MiddlewareModelNode
from streamagent.middleware._schema import merged_schemas
from streamagent.middleware._stack import MiddlewareStack, can_jump_to
from streamagent.middleware._tools import MiddlewareToolRouter
from streamagent.nodes._runnables import NodeRunnable, RouteRunnable
from streamagent.nodes.model import ModelNode
from streamagent.nodes.prune import PruneNode
from streamagent.observability.observer import AgentObserver

__all__ = ["HookNode", "middleware_graph"]


class HookNode:
    """One middleware hook as a node body: ``hook(state, runtime)``.

    The async path awaits the async hook when the middleware overrides it, else runs the sync
    hook in a worker thread (with the run's context, so ``interrupt()`` works), as LangGraph's
    own function nodes do.
    """

    def __init__(self, middleware: Any, hook: str) -> None:
        from langchain.agents.middleware import AgentMiddleware

        cls = type(middleware)
        self.sync = getattr(middleware, hook)
        self.asynchronous = (
            getattr(middleware, f"a{hook}")
            if getattr(cls, f"a{hook}") is not getattr(AgentMiddleware, f"a{hook}")
            else None
        )
        self.sync_overridden = getattr(cls, hook) is not getattr(AgentMiddleware, hook)

    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        from langgraph.runtime import get_runtime

        if not self.sync_overridden:
            raise NotImplementedError("this middleware hook is async only: run the graph async")
        return self.sync(state, get_runtime())

    async def ainvoke(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        import asyncio

        from langgraph.runtime import get_runtime

        runtime = get_runtime()
        if self.asynchronous is not None:
            return await self.asynchronous(state, runtime)
        return await asyncio.to_thread(self.sync, state, runtime)


@dataclass(frozen=True)
class _Targets:
    """Where "model", "end" and the loop's entry lead in this graph."""

    prune: PruneNode
    first_before_model: str | None
    exit: str

    def model(self, state: Mapping[str, Any]) -> str:
        """The loop's entry: the first ``before_model`` hook, else prune-or-model."""
        return self.first_before_model or self.context(state)

    def context(self, state: Mapping[str, Any]) -> str:
        return self.prune.route(dict(state))

    def model_destinations(self) -> list[str]:
        return [self.first_before_model] if self.first_before_model else ["prune", "model"]

    def jump(self, state: Mapping[str, Any], *, source: str) -> str | None:
        target = state.get("jump_to")
        if target == "model":
            return self.context(state) if source == self.first_before_model else self.model(state)
        if target == "end":
            return self.exit
        if target == "tools":
            return "tools"
        return None


class HookEdge:
    """After a hook node: its ``jump_to`` if it may jump, else ``default`` (``None``: the
    prune-or-model route)."""

    def __init__(self, targets: _Targets, *, source: str, default: str | None) -> None:
        self.targets = targets
        self.source = source
        self.default = default

    def __call__(self, state: Mapping[str, Any]) -> str:
        jumped = self.targets.jump(state, source=self.source)
        if jumped is not None:
            return jumped
        return self.default if self.default is not None else self.targets.context(state)


class AfterModelEdge:
    """After the model (and its ``after_model`` hooks): a jump, pending tool calls → tools,
    calls all answered (a hook answered them) → the loop's entry, else the end."""

    def __init__(self, targets: _Targets, *, source: str) -> None:
        self.targets = targets
        self.source = source

    def __call__(self, state: Mapping[str, Any]) -> str:
        jumped = self.targets.jump(state, source=self.source)
        if jumped is not None:
            return jumped
        messages = list(state.get("messages") or [])
        for index in range(len(messages) - 1, -1, -1):
            message = messages[index]
            if isinstance(message, AIMessage):
                calls = [c["id"] for c in message.tool_calls] + [
                    c.get("id") for c in message.invalid_tool_calls
                ]
                if not calls:
                    return self.targets.exit
                answered = {
                    m.tool_call_id for m in messages[index + 1 :] if isinstance(m, ToolMessage)
                }
                if any(c not in answered for c in calls):
                    return "tools"
                return self.targets.model(state)
        return self.targets.exit


class AfterToolsEdge:
    """After the tool router: the end when every call ran a ``return_direct`` tool, else the
    loop's entry."""

    def __init__(self, targets: _Targets, tools: Mapping[str, BaseTool]) -> None:
        self.targets = targets
        self.tools = tools

    def __call__(self, state: Mapping[str, Any]) -> str:
        messages = list(state.get("messages") or [])
        names: list[str] = []
        for message in reversed(messages):
            if not isinstance(message, ToolMessage):
                break
            names.append(message.name or "")
        direct = [n for n in names if n in self.tools]
        if (
            direct
            and len(direct) == len(names)
            and all(self.tools[n].return_direct for n in direct)
        ):
            return self.targets.exit
        return self.targets.model(state)


def _runnable(func: Any, afunc: Any, name: str) -> Runnable[Any, Any]:
    return cast("Runnable[Any, Any]", NodeRunnable(func, afunc, name=name))


def _node_name(middleware: Any, hook: str) -> str:
    return f"{middleware.name}.{hook}"


def middleware_graph(
    stack: MiddlewareStack,
    *,
    prune: PruneNode,
    model_node: ModelNode,
    tools: list[BaseTool],
    config: AgentConfig,
    name: str,
    observer: AgentObserver | None,
    state_schema: type,
) -> StateGraph[Any]:
    """The agent's uncompiled graph with ``stack``'s hooks (see the module docstring)."""
    state, input_schema, output_schema = merged_schemas([*stack.state_schemas, state_schema])
    builder: StateGraph[Any] = StateGraph(
        state, input_schema=input_schema, output_schema=output_schema
    )
    model = MiddlewareModelNode(node=model_node, stack=stack, tools=tools)
    router = MiddlewareToolRouter(
        tools=tools, config=config, name=name, stack=stack, observer=observer
    )
    builder.add_node("prune", _runnable(prune.invoke, prune.ainvoke, "prune"))
    builder.add_node("model", _runnable(model.invoke, model.ainvoke, "model"))
    builder.add_node("tools", _runnable(router.invoke, router.ainvoke, "tools"))
    hooks = {hook: stack.with_hook(hook) for hook in stack.hooks}
    for hook in ("before_agent", "before_model", "after_model", "after_agent"):
        for middleware in hooks[hook]:
            body = HookNode(middleware, hook)
            node = _node_name(middleware, hook)
            builder.add_node(node, _runnable(body.invoke, body.ainvoke, node))
    before_agent, before_model = hooks["before_agent"], hooks["before_model"]
    after_model, after_agent = hooks["after_model"], hooks["after_agent"]
    targets = _Targets(
        prune=prune,
        first_before_model=_node_name(before_model[0], "before_model") if before_model else None,
        exit=_node_name(after_agent[-1], "after_agent") if after_agent else END,
    )
    model_targets = targets.model_destinations()
    _wire_entry(builder, targets, before_agent, model_targets)
    chains: list[tuple[str, list[Any], str | None]] = [
        ("before_agent", list(before_agent), targets.first_before_model),
        ("before_model", list(before_model), None),
        ("after_model", list(reversed(after_model)), None),
        ("after_agent", list(reversed(after_agent)), END),
    ]
    for hook, chain, last_default in chains:
        _wire_chain(
            builder,
            targets,
            hook=hook,
            chain=chain,
            last_default=last_default,
            model_targets=model_targets,
        )
    builder.add_edge("prune", "model")
    loop_exit = _node_name(after_model[0], "after_model") if after_model else "model"
    if after_model:
        builder.add_edge("model", _node_name(after_model[-1], "after_model"))
    builder.add_conditional_edges(
        loop_exit,
        RouteRunnable(AfterModelEdge(targets, source=loop_exit), name="route_after_model"),
        sorted({"tools", targets.exit, *model_targets}),
    )
    after_tools = AfterToolsEdge(targets, router.tools)
    builder.add_conditional_edges(
        "tools",
        RouteRunnable(after_tools, name="route_after_tools"),
        sorted({targets.exit, *model_targets}),
    )
    return builder


def _wire_entry(
    builder: StateGraph[Any], targets: _Targets, before_agent: Any, model_targets: list[str]
) -> None:
    if before_agent:
        builder.add_edge(START, _node_name(before_agent[0], "before_agent"))
    elif targets.first_before_model:
        builder.add_edge(START, targets.first_before_model)
    else:
        to_context = RouteRunnable(targets.context, name="route_context")
        builder.add_conditional_edges(START, to_context, ["prune", "model"])


def _wire_chain(  # noqa: PLR0917 - one call site, all positional for brevity
    builder: StateGraph[Any],
    targets: _Targets,
    hook: str,
    chain: list[Any],
    last_default: str | None,
    model_targets: list[str],
) -> None:
    """Edges of one hook's chain (in run order); after its last node, ``last_default``
    (``None``: prune-or-model; ``after_model``'s last node is routed by the caller)."""
    for index, middleware in enumerate(chain):
        source = _node_name(middleware, hook)
        is_last = index == len(chain) - 1
        if hook == "after_model" and is_last:
            continue  # the loop's exit: AfterModelEdge
        default = _node_name(chain[index + 1], hook) if not is_last else last_default
        jumps = can_jump_to(middleware, hook)
        if not jumps and default is not None:
            builder.add_edge(source, default)
            continue
        destinations = {default} if default is not None else {"prune", "model"}
        if "end" in jumps:
            destinations.add(targets.exit)
        if "tools" in jumps:
            destinations.add("tools")
        if "model" in jumps:
            destinations.update(
                ["prune", "model"] if source == targets.first_before_model else model_targets
            )
        edge = HookEdge(targets, source=source, default=default)
        builder.add_conditional_edges(
            source, RouteRunnable(edge, name=f"route_{source}"), sorted(destinations)
        )
