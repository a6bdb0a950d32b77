"""``create_agent_graph`` (uncompiled, composable) and ``build_agent`` (compiled, with memory)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Literal, cast

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import BaseStore

from streamagent.accounting.cost import CostCalculator
from streamagent.accounting.tokens import preload_encoding
from streamagent.config import AgentConfig
from streamagent.nodes._runnables import NodeRunnable, RouteRunnable
from streamagent.nodes.model import ModelNode
from streamagent.nodes.prune import PruneNode
from streamagent.nodes.tools import ToolRouter
from streamagent.observability.observer import AgentObserver
from streamagent.state import AgentState
from streamagent.tools.custom import ToolLike

__all__ = [
    "build_agent",
    "create_agent_graph",
    "default_saver",
    "route_after_model",
    "route_to_structured",
]

logger = logging.getLogger(__name__)


def _node(
    func: Callable[[dict[str, Any], RunnableConfig], dict[str, Any]],
    afunc: Callable[[dict[str, Any], RunnableConfig], Awaitable[dict[str, Any]]],
    name: str,
) -> Runnable[AgentState, dict[str, Any]]:
    """A node runnable with sync and async bodies (the nodes read the state as a plain dict)."""
    return cast("Runnable[AgentState, dict[str, Any]]", NodeRunnable(func, afunc, name=name))


def route_after_model(state: Mapping[str, Any]) -> Literal["tools", "__end__"]:
    """Go to the tool router when the last AI message asked for tools, else finish."""
    messages = state.get("messages") or []
    last = messages[-1] if messages else None
    if isinstance(last, AIMessage) and (last.tool_calls or last.invalid_tool_calls):
        return "tools"
    return "__end__"


def route_to_structured(state: Mapping[str, Any]) -> Literal["tools", "structured"]:
    """With ``response_format``: the final answer goes on to the structured-output node."""
    return "tools" if route_after_model(state) == "tools" else "structured"


def _checked_model(model: Any) -> None:
    from streamagent.errors import ConfigurationError
    from streamagent.llm.structured import is_structured_output_model

    if is_structured_output_model(model):
        raise ConfigurationError(
            "model= is a structured-output model (chat_model.with_structured_output(...)), "
            "which cannot stream or call tools: pass the chat model itself and "
            "response_format=YourSchema"
        )


def _as_tools(tools: Sequence[ToolLike]) -> list[BaseTool]:
    from streamagent.tools import as_tool

    converted = [as_tool(t) for t in tools]
    names = [t.name for t in converted]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        from streamagent.errors import ConfigurationError

        raise ConfigurationError(f"duplicate tool names: {', '.join(sorted(dupes))}")
    return converted


def create_agent_graph(
    *,
    model: BaseChatModel | str | None = None,
    tools: Sequence[ToolLike] = (),
    config: AgentConfig | None = None,
    name: str = "agent",
    observer: AgentObserver | None = None,
    state_schema: type[AgentState] | None = None,
    middleware: Sequence[Any] = (),
    response_format: Any = None,
) -> StateGraph[AgentState]:
    """The agent as an *uncompiled* ``StateGraph``: [prune] → model → (tools → [prune] | END).

    ``prune`` runs only when the thread needs it (too long, oversized tool output, an earlier
    trimmed view): otherwise the edges from ``START`` and ``tools`` go straight to ``model``.

    Compile it with your own checkpointer, or add it (compiled) as a node of a bigger graph —
    its state shares the ``messages`` key with any ``MessagesState`` parent.

    ``model`` is a chat model instance, a model name, or ``None`` for ChatOpenAI built from
    ``config.model`` (lazily, at the first call: building the graph does no I/O and needs no key).

    ``response_format`` (a pydantic model, a ``TypedDict``, a JSON schema dict, or
    :class:`~streamagent.llm.structured.ResponseFormat` to choose the strategy) adds a
    ``structured`` node after the final answer that puts the validated value in
    ``state["structured_response"]`` (see :mod:`streamagent.llm.structured`).

    ``state_schema`` extends :class:`~streamagent.state.AgentState` with keys of your own (a
    ``TypedDict`` subclass of it), which tools can read (``InjectedState``) and write
    (``Command(update=...)``).

    ``middleware`` takes LangChain ``AgentMiddleware`` instances (the ``middleware`` extra),
    run with ``create_agent``'s semantics (:mod:`streamagent.middleware`, ``docs/middleware.md``).
    Without middleware the graph has no extra node or edge.

    Example:
        >>> from streamagent import AgentConfig, ModelConfig, create_agent_graph
        >>> builder = create_agent_graph(config=AgentConfig(model=ModelConfig(api_key="sk-x")))
        >>> sorted(builder.nodes)
        ['model', 'prune', 'tools']
        >>> app = builder.compile()   # no checkpointer: stateless runs
    """
    cfg = config or AgentConfig()
    llm: BaseChatModel | None = None
    if isinstance(model, str):
        cfg = cfg.with_model(model=model)
    elif model is not None:
        _checked_model(model)
        llm = model
    stack = None
    if middleware:
        from streamagent.middleware import MiddlewareStack

        stack = MiddlewareStack.of(middleware)
    tool_list = _as_tools([*tools, *stack.tools] if stack else tools)
    costs = CostCalculator(prices=cfg.prices)
    prune = PruneNode(tools=tool_list, config=cfg, observer=observer)
    model_node = ModelNode(
        llm=llm, tools=tool_list, config=cfg, name=name, costs=costs, observer=observer
    )
    if stack is not None:
        from streamagent.middleware._graph import middleware_graph

        return cast(
            "StateGraph[AgentState]",
            middleware_graph(
                stack,
                prune=prune,
                model_node=model_node,
                tools=tool_list,
                config=cfg,
                name=name,
                observer=observer,
                state_schema=state_schema or AgentState,
            ),
        )
    router = ToolRouter(tools=tool_list, config=cfg, name=name, observer=observer)

    builder: StateGraph[AgentState] = StateGraph(state_schema or AgentState)
    builder.add_node("prune", _node(prune.invoke, prune.ainvoke, "prune"))
    builder.add_node("model", _node(model_node.invoke, model_node.ainvoke, "model"))
    builder.add_node("tools", _node(router.invoke, router.ainvoke, "tools"))
    # prune runs only when it has something to do (PruneNode.route): a step saved per call
    to_context = RouteRunnable(prune.route, name="route_context")
    builder.add_conditional_edges(START, to_context, ["prune", "model"])
    builder.add_edge("prune", "model")
    # Inline on both paths: a plain sync function would run in the thread pool on async runs.
    if response_format is None:
        route = RouteRunnable(route_after_model, name="route_after_model")
        builder.add_conditional_edges("model", route, ["tools", END])
    else:
        from streamagent.llm.structured import as_response_format
        from streamagent.nodes.structured import StructuredNode

        structured = StructuredNode(
            model_node=model_node, response_format=as_response_format(response_format)
        )
        builder.add_node("structured", _node(structured.invoke, structured.ainvoke, "structured"))
        to_structured = RouteRunnable(route_to_structured, name="route_after_model")
        builder.add_conditional_edges("model", to_structured, ["tools", "structured"])
        builder.add_edge("structured", END)
    builder.add_conditional_edges("tools", to_context, ["prune", "model"])
    return builder


def default_saver() -> BaseCheckpointSaver[Any]:
    """A :class:`~streamagent.memory.RedisSaver` on ``REDIS_URL`` or the embedded server."""
    from streamagent.memory import RedisSaver, default_redis_url
    from streamagent.memory.sync import redis_client

    client = redis_client(default_redis_url(), socket_timeout=10.0, socket_connect_timeout=5.0)
    saver = RedisSaver(client)
    saver.setup()
    return saver


def build_agent(
    *,
    model: BaseChatModel | str | None = None,
    tools: Sequence[ToolLike] = (),
    config: AgentConfig | None = None,
    name: str = "agent",
    checkpointer: BaseCheckpointSaver[Any] | Literal[False] | None = None,
    observer: AgentObserver | None = None,
    middleware: Sequence[Any] = (),
    store: BaseStore | Literal[False] | None = None,
) -> CompiledStateGraph[AgentState, Any, AgentState, AgentState]:
    """Compile the agent with memory for the common case.

    ``checkpointer=None`` uses Redis: ``REDIS_URL`` when set, else an embedded Redis server
    started on first use (data under :func:`streamagent.memory.default_data_dir`, persistent,
    stopped at exit). ``checkpointer=False`` compiles without memory. This function connects
    to Redis (it runs ``setup()``), unlike :func:`create_agent_graph`.

    ``store`` (LangGraph long-term memory, reached with ``get_store()`` in nodes and tools):
    ``None`` follows the checkpointer — a :class:`~streamagent.memory.RedisStore` on the same
    Redis for the default saver or a sync ``RedisSaver``, none otherwise; ``False`` none.

    Example:
        >>> from streamagent import AgentConfig, ModelConfig, build_agent
        >>> agent = build_agent(config=AgentConfig(model=ModelConfig(api_key="sk-x")),
        ...                     checkpointer=False)
        >>> agent.name
        'agent'
    """
    cfg = config or AgentConfig()
    preload_encoding(cfg.model.model if not isinstance(model, str) else model)
    builder = create_agent_graph(
        model=model, tools=tools, config=cfg, name=name, observer=observer, middleware=middleware
    )
    saver: BaseCheckpointSaver[Any] | None
    if checkpointer is None:
        saver = default_saver()
    elif checkpointer is False:
        saver = None
    else:
        saver = checkpointer
    long_term: BaseStore | None = store or None
    if store is None and (checkpointer is None or hasattr(saver, "keys_for")):
        from streamagent.memory import default_store

        long_term = default_store(saver)
    compiled = builder.compile(checkpointer=saver, store=long_term, name=name)
    limit = cfg.recursion_limit
    if middleware:  # hook nodes are steps too
        from streamagent.middleware import recursion_limit

        limit = recursion_limit(list(builder.nodes), max_steps=cfg.max_steps)
    return compiled.with_config(recursion_limit=limit)
