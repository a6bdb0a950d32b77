"""Tool argument injection with ``ToolNode``'s semantics, for the tool router.

A tool may declare parameters that the *graph* fills in, never the model:

* ``Annotated[dict, InjectedState]`` (the whole state) or ``Annotated[T, InjectedState("key")]``
  (one key of it);
* ``Annotated[BaseStore, InjectedStore()]`` (the store the graph was compiled with);
* ``Annotated[str, InjectedToolCallId]`` (the id of the call being answered);
* ``runtime: ToolRuntime`` (state, context, config, store, stream writer, tool_call_id).

These names are left out of the schema the model sees (``tool.tool_call_schema``, which
``bind_tools`` and the token counter use), and a value the model sends under an injected name
is dropped before the trusted one is added — as ``langgraph.prebuilt.ToolNode`` does. The
markers are LangGraph's and LangChain's own public classes; only the analysis of a tool's
signature is re-implemented here (LangGraph's is private).

Example:
    >>> from typing import Annotated
    >>> from langchain_core.tools import tool
    >>> from langgraph.prebuilt import InjectedState
    >>> @tool
    ... def count(word: str, messages: Annotated[list, InjectedState("messages")]) -> int:
    ...     '''Count the messages.'''
    ...     return len(messages)
    >>> plan = injection_plan(count)
    >>> plan.state, sorted(plan.keys)
    ({'messages': 'messages'}, ['messages'])
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from langchain_core.messages import ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, InjectedToolArg, InjectedToolCallId
from langchain_core.tools.base import get_all_basemodel_annotations
from langgraph.prebuilt import InjectedState, InjectedStore, ToolRuntime
from langgraph.runtime import Runtime, get_runtime
from pydantic import BaseModel

from streamagent.errors import ConfigurationError

__all__ = [
    "InjectionPlan",
    "current_runtime",
    "inject",
    "injected_parameters",
    "injection_plan",
    "tool_runtime",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InjectionPlan:
    """Which parameters of one tool the router fills in.

    ``state`` maps a parameter to the state key it receives (``None``: the whole state);
    ``store`` / ``runtime`` name the parameter receiving the store / the :class:`ToolRuntime`;
    ``call_id`` the parameters receiving the tool call id; ``keys`` every injected name (the
    ones a model-sent value is dropped for); ``optional`` the state parameters with a default.
    """

    state: dict[str, str | None] = field(default_factory=dict)
    store: str | None = None
    runtime: str | None = None
    call_id: frozenset[str] = frozenset()
    keys: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.keys)


def _markers(annotation: Any) -> list[Any]:
    """Every marker an annotation carries: ``Annotated`` metadata, through unions."""
    origin = get_origin(annotation)
    if origin is Annotated:
        args = get_args(annotation)
        return [*_markers(args[0]), *args[1:]]
    if origin is Union or (origin is not None and type(annotation).__name__ == "UnionType"):
        return [m for arg in get_args(annotation) for m in _markers(arg)]
    return [annotation]


def _is(marker: Any, kind: type) -> bool:
    if isinstance(marker, kind):
        return True
    if isinstance(marker, type) and issubclass(marker, kind):
        return True
    origin = get_origin(marker)
    return isinstance(origin, type) and issubclass(origin, kind)


def _hints(func: Any) -> dict[str, Any]:
    try:
        found = dict(get_type_hints(func, include_extras=True))
    except (NameError, TypeError) as exc:  # unresolvable forward references
        logger.debug("no type hints for %r: %s", func, exc)
        return {}
    found.pop("return", None)
    return found


def _annotations(tool: BaseTool) -> dict[str, Any]:
    """The tool's parameter annotations: its args schema's, completed by its function's
    (a dict-form tool's: its handler's)."""
    found: dict[str, Any] = {}
    func = (
        getattr(tool, "func", None)
        or getattr(tool, "coroutine", None)
        or getattr(tool, "handler", None)
    )
    if func is not None:
        found.update(_hints(func))
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        found.update(get_all_basemodel_annotations(schema))
    return found


def _optional(tool: BaseTool, name: str) -> bool:
    schema = tool.args_schema
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        info = schema.model_fields.get(name)
        return info is not None and not info.is_required()
    return False


def injection_plan(tool: BaseTool) -> InjectionPlan:
    """Analyse ``tool`` once (at graph build time): what the router must inject."""
    state: dict[str, str | None] = {}
    store: str | None = None
    runtime: str | None = None
    call_id: set[str] = set()
    keys: set[str] = set()
    optional: set[str] = set()
    for name, annotation in _annotations(tool).items():
        markers = _markers(annotation)
        if name == "runtime" or any(_is(m, ToolRuntime) for m in markers):
            runtime = name
            keys.add(name)
        for marker in markers:
            if _is(marker, InjectedState):
                state[name] = marker.field if isinstance(marker, InjectedState) else None
                if _optional(tool, name):
                    optional.add(name)
            elif _is(marker, InjectedStore):
                store = name
            elif _is(marker, InjectedToolCallId):
                call_id.add(name)
            if _is(marker, InjectedToolArg):
                keys.add(name)
    return InjectionPlan(
        state=state,
        store=store,
        runtime=runtime,
        call_id=frozenset(call_id),
        keys=frozenset(keys),
        optional=frozenset(optional),
    )


def injected_parameters(func: Any) -> frozenset[str]:
    """The parameters of ``func`` the router injects (for the dict form's handlers)."""
    names = set()
    for name, annotation in _hints(func).items():
        markers = _markers(annotation)
        if name == "runtime" or any(
            _is(m, ToolRuntime) or _is(m, InjectedToolArg) for m in markers
        ):
            names.add(name)
    return frozenset(names)


def current_runtime() -> Runtime[Any] | None:
    """The LangGraph runtime of the node being run, or ``None`` outside a graph."""
    try:
        runtime = get_runtime()
    except (RuntimeError, KeyError):
        return None
    return runtime if isinstance(runtime, Runtime) else None


def tool_runtime(
    *,
    state: Any,
    call: ToolCall,
    config: RunnableConfig,
    runtime: Runtime[Any] | None,
    tools: Sequence[BaseTool],
) -> ToolRuntime[Any, Any]:
    """The :class:`ToolRuntime` one call sees (built as ``ToolNode`` builds it)."""
    return ToolRuntime(
        state=state,
        tool_call_id=call.get("id"),
        config=config,
        context=None if runtime is None else runtime.context,
        store=None if runtime is None else runtime.store,
        stream_writer=_no_writer if runtime is None else runtime.stream_writer,
        tools=list(tools),
        execution_info=None if runtime is None else runtime.execution_info,
        server_info=None if runtime is None else runtime.server_info,
    )


def _no_writer(_chunk: Any) -> None:
    """The stream writer outside a graph: writes go nowhere."""


def _state_values(plan: InjectionPlan, state: Any, tool: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for arg, key in plan.state.items():
        if key is None:
            values[arg] = state
        elif isinstance(state, Mapping) and key in state:
            values[arg] = state[key]
        elif not isinstance(state, Mapping) and hasattr(state, key):
            values[arg] = getattr(state, key)
        elif arg not in plan.optional:
            raise ConfigurationError(
                f"tool {tool!r} needs the state key {key!r} (InjectedState({key!r})), "
                "which the agent's state does not have"
            )
    return values


def inject(call: ToolCall, plan: InjectionPlan, runtime: ToolRuntime[Any, Any]) -> ToolCall:
    """``call`` with the model's values for injected names dropped and the trusted ones added.

    Raises :class:`ConfigurationError` when a tool needs a store the graph was compiled
    without, or a state key the state lacks.
    """
    if not plan:
        return call
    values = _state_values(plan, runtime.state, call["name"])
    if plan.store is not None:
        if runtime.store is None:
            raise ConfigurationError(
                f"tool {call['name']!r} needs a store (InjectedStore): compile the graph with "
                "store=..."
            )
        values[plan.store] = runtime.store
    if plan.runtime is not None:
        values[plan.runtime] = runtime
    for name in plan.call_id:
        values[name] = call.get("id")
    args = {k: v for k, v in (call.get("args") or {}).items() if k not in plan.keys}
    dropped = set(call.get("args") or {}) & plan.keys
    if dropped:
        logger.warning(
            "tool %s: dropped model-supplied values for injected arguments %s",
            call["name"],
            ", ".join(sorted(dropped)),
        )
    return {**call, "args": {**args, **values}}
