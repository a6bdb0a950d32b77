"""Runnables for the agent's nodes and its router, without per-call signature inspection.

``RunnableLambda`` inspects its function's signature twice per layer on *every* call (to
decide whether to pass ``config`` / ``run_manager``), and LangGraph runs a plain *sync*
router function in the default thread pool on async runs. The agent's functions have fixed
signatures, so these wrappers call them directly: :class:`NodeRunnable` keeps exactly what
``RunnableLambda`` does for tracing (a child chain run named after the node, the child config
passed to the function and set as the current config, errors reported with
``on_chain_error``); :class:`RouteRunnable` is an untraced router (LangGraph traces branches
as part of the node that wrote them) that runs inline on both paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
    set_config_context,
)
from langchain_core.runnables.utils import coro_with_context

__all__ = ["NodeRunnable", "RouteRunnable"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class NodeRunnable(Runnable[_In, _Out], Generic[_In, _Out]):
    """A traced node with a sync and an async body, each called as ``body(input, config)``."""

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
        config = ensure_config(config)
        run_manager = get_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
        )
        try:
            child = patch_config(config, callbacks=run_manager.get_child())
            with set_config_context(child) as context:
                output = context.run(self.func, input, child)
        except BaseException as error:
            run_manager.on_chain_error(error)
            raise
        run_manager.on_chain_end(output)
        return output

    async def ainvoke(
        self, input: _In, config: RunnableConfig | None = None, **kwargs: Any
    ) -> _Out:
        config = ensure_config(config)
        run_manager = await get_async_callback_manager_for_config(config).on_chain_start(
            None, input, name=config.get("run_name") or self.name, run_id=config.pop("run_id", None)
        )
        try:
            child = patch_config(config, callbacks=run_manager.get_child())
            with set_config_context(child) as context:
                output = await coro_with_context(self.afunc(input, child), context)
        except BaseException as error:
            await run_manager.on_chain_error(error)
            raise
        await run_manager.on_chain_end(output)
        return output


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
