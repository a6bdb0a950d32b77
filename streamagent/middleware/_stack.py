"""The middleware of one agent, sorted by hook (pure: no graph, no I/O).

LangChain's ``create_agent`` decides which hooks a middleware has by comparing its class's
methods with :class:`~langchain.agents.middleware.AgentMiddleware`'s: a hook counts when the
sync *or* the async method is overridden. :class:`MiddlewareStack` does the same, once, when
the graph is built.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.tools import BaseTool

from streamagent.errors import ConfigurationError, MissingExtraError

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware

__all__ = [
    "MIDDLEWARE_EXTRA",
    "NODE_HOOKS",
    "MiddlewareStack",
    "NodeHook",
    "can_jump_to",
    "recursion_limit",
    "require_langchain",
]

#: The extra that installs LangChain's middleware: ``pip install 'streamagent[middleware]'``.
MIDDLEWARE_EXTRA = "middleware"

NodeHook = Literal["before_agent", "before_model", "after_model", "after_agent"]
#: The hooks that run as graph nodes, in the order of an agent's run.
NODE_HOOKS: tuple[NodeHook, ...] = ("before_agent", "before_model", "after_model", "after_agent")


def require_langchain() -> None:
    """Raise :class:`~streamagent.errors.MissingExtraError` when ``langchain`` is missing."""
    try:
        found = importlib.util.find_spec("langchain.agents.middleware") is not None
    except ImportError:  # a parent package that is missing or blocked
        found = False
    if not found:
        raise MissingExtraError(
            "middleware= needs LangChain's AgentMiddleware (the `langchain` package, 1.4.7 or "
            f"newer): install it with `pip install 'streamagent[{MIDDLEWARE_EXTRA}]'`",
            extra=MIDDLEWARE_EXTRA,
        )


def recursion_limit(node_names: Sequence[str], *, max_steps: int) -> int:
    """LangGraph's recursion limit for ``max_steps`` model calls in a graph with these nodes:
    prune + model + tools and every ``before_model`` / ``after_model`` hook per step, the
    ``before_agent`` / ``after_agent`` hooks once."""
    per_step = 3 + sum(n.endswith((".before_model", ".after_model")) for n in node_names)
    once = sum(n.endswith((".before_agent", ".after_agent")) for n in node_names)
    return max_steps * per_step + 3 + once


def _overrides(middleware: Any, hook: str) -> bool:
    from langchain.agents.middleware import AgentMiddleware

    cls = type(middleware)
    return bool(
        getattr(cls, hook) is not getattr(AgentMiddleware, hook)
        or getattr(cls, f"a{hook}") is not getattr(AgentMiddleware, f"a{hook}")
    )


def can_jump_to(middleware: Any, hook: str) -> list[str]:
    """The ``can_jump_to`` a hook declares (``@hook_config`` / the decorators), else ``[]``."""
    from langchain.agents.middleware import AgentMiddleware

    cls = type(middleware)
    for name in (hook, f"a{hook}"):
        method = getattr(cls, name, None)
        if method is not None and method is not getattr(AgentMiddleware, name, None):
            declared = getattr(method, "__can_jump_to__", None)
            if declared:
                return list(declared)
    return []


@dataclass(frozen=True)
class MiddlewareStack:
    """An agent's middleware in registration order, with the ones that have each hook."""

    middleware: tuple[AgentMiddleware[Any, Any], ...]
    hooks: dict[str, tuple[AgentMiddleware[Any, Any], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, middleware: Sequence[Any]) -> MiddlewareStack:
        """Validate ``middleware`` (LangChain installed, instances, unique names) and sort it."""
        require_langchain()
        from langchain.agents.middleware import AgentMiddleware

        items = tuple(middleware)
        for item in items:
            if not isinstance(item, AgentMiddleware):
                raise ConfigurationError(
                    f"middleware must be AgentMiddleware instances, got {type(item).__name__}"
                )
        names = [m.name for m in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigurationError(f"duplicate middleware: {', '.join(dupes)}")
        hooks = {
            hook: tuple(m for m in items if _overrides(m, hook))
            for hook in (*NODE_HOOKS, "wrap_model_call", "wrap_tool_call")
        }
        return cls(middleware=items, hooks=hooks)

    def with_hook(self, hook: str) -> tuple[AgentMiddleware[Any, Any], ...]:
        """The middleware that implement ``hook`` (registration order)."""
        return self.hooks.get(hook, ())

    @property
    def tools(self) -> list[BaseTool]:
        """Tools the middleware bring (``AgentMiddleware.tools``), added to the agent's."""
        return [t for m in self.middleware for t in getattr(m, "tools", None) or ()]

    @property
    def state_schemas(self) -> list[type]:
        """Each middleware's ``state_schema`` (merged into the agent's state)."""
        return [m.state_schema for m in self.middleware]

    def find(self, class_name: str) -> list[AgentMiddleware[Any, Any]]:
        """The middleware whose class (or a base class) is called ``class_name``."""
        return [
            m for m in self.middleware if any(k.__name__ == class_name for k in type(m).__mro__)
        ]
