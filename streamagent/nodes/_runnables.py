"""Runnables for the agent's nodes and its router, without per-call signature inspection.

``RunnableLambda`` inspects its function's signature twice per layer on *every* call (to
decide whether to pass ``config`` / ``run_manager``), and LangGraph runs a plain *sync*
router function in the default thread pool on async runs. The agent's functions have fixed
signatures, so these wrappers call them directly: :class:`NodeRunnable` is a node body as
LangGraph's own function nodes are (the task's run is the node's run); :class:`RouteRunnable`
is an untraced router (LangGraph traces branches as part of the node that wrote them) that runs
inline on both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import ensure_config

__all__ = ["NodeRunnable", "RouteRunnable"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class NodeRunnable(Runnable[_In, _Out], Generic[_In, _Out]):
    """A node with a sync and an async body, each called as ``body(input, config)``.

    Untraced, like the function nodes LangGraph builds itself (``trace=False``): LangGraph
    already opens one run per task, named after the node, with the task's config and callbacks
    (LangSmith shows ``model`` → ``ChatOpenAI``, ``tools`` → each tool). ``RunnableLambda``
    nested a second run of the same name under it, on every step.
    """

    def __init__(
        self,
        func: Callable[[_In, RunnableConfig], _Out],
        afunc: Callable[[_In, RunnableConfig], Awaitable[_Out]],
        *,
        name: str,
    ) -> None:
        self.func = func
        self.afunc = afunc
        self.name = name

    def __repr__(self) -> str:
        return f"NodeRunnable({self.name})"

    def invoke(self, input: _In, config: RunnableConfig | None = None, **kwargs: Any) -> _Out:
        return self.func(input, ensure_config(config))

    async def ainvoke(
        self, input: _In, config: RunnableConfig | None = None, **kwargs: Any
    ) -> _Out:
        return await self.afunc(input, ensure_config(config))


class RouteRunnable(Runnable[_In, _Out], Generic[_In, _Out]):
    """An untraced, inline router: ``func(state)`` on the sync and the async path."""

    def __init__(self, func: Callable[[_In], _Out], *, name: str) -> None:
        self.func = func
        self.name = name

    def __repr__(self) -> str:
        return f"RouteRunnable({self.name})"

    def invoke(self, input: _In, config: RunnableConfig | None = None, **kwargs: Any) -> _Out:
        return self.func(input)

    async def ainvoke(
        self, input: _In, config: RunnableConfig | None = None, **kwargs: Any
    ) -> _Out:
        return self.func(input)
