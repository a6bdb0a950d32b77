"""``wrap_tool_call`` around each call the tool router runs, as ``create_agent`` composes it.

The first middleware is the outermost layer; innermost, the tool runs (it raises what it
raises, so ``ToolRetryMiddleware`` sees the failure). The router still does everything around
the chain: unknown tools and broken arguments are answered before it, approval happens before
it, the per-call timeout covers the whole chain, and an exception that leaves the chain becomes
an error ``ToolMessage``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import ToolCall
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from streamagent.config import AgentConfig
from streamagent.errors import ToolFailure
from streamagent.middleware._stack import MiddlewareStack
from streamagent.nodes.tools import ToolRouter
from streamagent.observability.observer import AgentObserver
from streamagent.tools.injection import current_runtime, tool_runtime

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware
    from langgraph.prebuilt.tool_node import ToolCallRequest

__all__ = ["MiddlewareToolRouter"]

#: What a tool call returns: a ToolMessage or a Command.
ToolMessageOrCommand = Any


def _run(request: ToolCallRequest, config: RunnableConfig) -> Any:
    if request.tool is None:
        raise ToolFailure(f"no tool named {request.tool_call['name']!r}")
    return request.tool.invoke(request.tool_call, config)


async def _arun(request: ToolCallRequest, config: RunnableConfig) -> Any:
    if request.tool is None:
        raise ToolFailure(f"no tool named {request.tool_call['name']!r}")
    return await request.tool.ainvoke(request.tool_call, config)


class _Layer:
    """``middleware.wrap_tool_call`` around ``inner`` (sync)."""

    def __init__(self, middleware: AgentMiddleware[Any, Any], inner: _Layer | None) -> None:
        self.middleware = middleware
        self.inner = inner

    def __call__(self, request: ToolCallRequest, config: RunnableConfig) -> Any:
        def execute(req: ToolCallRequest) -> ToolMessageOrCommand:
            return self.inner(req, config) if self.inner else _run(req, config)

        return self.middleware.wrap_tool_call(request, execute)


class _ALayer:
    """``middleware.awrap_tool_call`` around ``inner`` (async)."""

    def __init__(self, middleware: AgentMiddleware[Any, Any], inner: _ALayer | None) -> None:
        self.middleware = middleware
        self.inner = inner

    async def __call__(self, request: ToolCallRequest, config: RunnableConfig) -> Any:
        async def execute(req: ToolCallRequest) -> ToolMessageOrCommand:
            return await (self.inner(req, config) if self.inner else _arun(req, config))

        return await self.middleware.awrap_tool_call(request, execute)


class MiddlewareToolRouter(ToolRouter):
    """The tool router with the stack's ``wrap_tool_call`` layers around each call."""

    def __init__(
        self,
        *,
        tools: Sequence[BaseTool],
        config: AgentConfig,
        name: str,
        stack: MiddlewareStack,
        observer: AgentObserver | None = None,
    ) -> None:
        super().__init__(tools=tools, config=config, name=name, observer=observer)
        layer: _Layer | None = None
        alayer: _ALayer | None = None
        for middleware in reversed(stack.with_hook("wrap_tool_call")):
            layer = _Layer(middleware, layer)
            alayer = _ALayer(middleware, alayer)
        self.layer = layer
        self.alayer = alayer
        # the sync path runs calls in worker threads, where LangGraph's runtime (a context
        # variable of the node's thread) is not set: invoke notes it per run's config
        self._runtimes: dict[int, Any] = {}

    def _request(
        self, tool: BaseTool, call: ToolCall, state: Mapping[str, Any], config: RunnableConfig
    ) -> ToolCallRequest:
        from langgraph.prebuilt.tool_node import ToolCallRequest

        runtime = tool_runtime(
            state=state,
            call=call,
            config=config,
            runtime=self._runtimes.get(id(config)) or current_runtime(),
            tools=list(self.tools.values()),
        )
        return ToolCallRequest(tool_call=call, tool=tool, state=state, runtime=runtime)

    async def acall_tool(
        self, tool: BaseTool, call: ToolCall, state: Mapping[str, Any], config: RunnableConfig
    ) -> Any:
        if self.alayer is None:
            return await tool.ainvoke(call, config)
        return await self.alayer(self._request(tool, call, state, config), config)

    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> Any:
        if self.layer is None:
            return super().invoke(state, config)
        self._runtimes[id(config)] = current_runtime()
        try:
            return super().invoke(state, config)
        finally:
            self._runtimes.pop(id(config), None)

    def call_tool(
        self, tool: BaseTool, call: ToolCall, state: Mapping[str, Any], config: RunnableConfig
    ) -> Any:
        if self.layer is None:
            return tool.invoke(call, config)
        return self.layer(self._request(tool, call, state, config), config)
