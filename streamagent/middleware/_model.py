"""``wrap_model_call`` around the model node's call, as ``create_agent`` composes it.

The first middleware is the outermost layer; each layer gets a ``handler`` that runs the layers
inside it and, innermost, one streamed call of :class:`~streamagent.nodes.model.ModelNode`
(its tokens still reach ``astream_chunks``, its retries and accounting still apply). A layer
may call its handler several times (retries, fallbacks): every call that returned is accounted
(usage and cost summed into the node's update). ``dynamic_prompt`` is such a layer.

Retries have one owner (``docs/middleware.md``): with a ``ModelRetryMiddleware`` in the stack,
each handler call makes one attempt (the middleware retries); without it, each handler call
retries with the node's policy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.types import Command

from streamagent.accounting.cost import Usage
from streamagent.errors import StreamAgentError
from streamagent.middleware._stack import MiddlewareStack
from streamagent.nodes.model import ModelNode
from streamagent.nodes.model_accounting import run_steps
from streamagent.streaming.protocol import EVENT_KEY, RETRY_EVENT
from streamagent.streaming.sink import graph_namespace, sink_of
from streamagent.tools.injection import current_runtime

if TYPE_CHECKING:
    from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse

__all__ = ["MiddlewareModelNode", "model_attempts"]

_Base = Callable[["ModelRequest[Any]"], "ModelResponse[Any]"]
_ABase = Callable[["ModelRequest[Any]"], Awaitable["ModelResponse[Any]"]]


@dataclass
class _Composed:
    """A layer's result: the model response and the ``Command``s layers returned with it."""

    response: ModelResponse[Any]
    commands: list[Command[Any]] = field(default_factory=list)


def _normalized(result: Any) -> _Composed:
    from langchain.agents.middleware import ExtendedModelResponse, ModelResponse

    if isinstance(result, _Composed):
        return result
    if isinstance(result, ExtendedModelResponse):
        commands = [result.command] if result.command is not None else []
        return _Composed(result.model_response, commands)
    if isinstance(result, AIMessage):
        return _Composed(ModelResponse(result=[result]))
    return _Composed(result)


class _Layer:
    """``middleware.wrap_model_call`` around ``inner`` (sync)."""

    def __init__(self, middleware: AgentMiddleware[Any, Any], inner: _Layer | None) -> None:
        self.middleware = middleware
        self.inner = inner

    def __call__(self, request: ModelRequest[Any], base: _Base) -> _Composed:
        inner_commands: list[Command[Any]] = []

        def handler(req: ModelRequest[Any]) -> ModelResponse[Any]:
            inner_commands.clear()  # a retried inner call replaces the earlier one's commands
            done = _normalized(self.inner(req, base) if self.inner else base(req))
            inner_commands.extend(done.commands)
            return done.response

        outer = _normalized(self.middleware.wrap_model_call(request, handler))
        return _Composed(outer.response, [*inner_commands, *outer.commands])


class _ALayer:
    """``middleware.awrap_model_call`` around ``inner`` (async)."""

    def __init__(self, middleware: AgentMiddleware[Any, Any], inner: _ALayer | None) -> None:
        self.middleware = middleware
        self.inner = inner

    async def __call__(self, request: ModelRequest[Any], base: _ABase) -> _Composed:
        inner_commands: list[Command[Any]] = []

        async def handler(req: ModelRequest[Any]) -> ModelResponse[Any]:
            inner_commands.clear()
            done = _normalized(await (self.inner(req, base) if self.inner else base(req)))
            inner_commands.extend(done.commands)
            return done.response

        outer = _normalized(await self.middleware.awrap_model_call(request, handler))
        return _Composed(outer.response, [*inner_commands, *outer.commands])


def model_attempts(stack: MiddlewareStack) -> int | None:
    """Attempts per handler call: 1 when a ``ModelRetryMiddleware`` owns retries, else the
    node's policy (``None``)."""
    return 1 if stack.find("ModelRetryMiddleware") else None


@dataclass
class _Call:
    """One model call that returned, for the node's accounting."""

    message: AIMessage
    messages: list[BaseMessage]
    attempt: Any
    model: str


class MiddlewareModelNode:
    """The model node with the stack's ``wrap_model_call`` layers around its call."""

    def __init__(self, *, node: ModelNode, stack: MiddlewareStack, tools: Sequence[BaseTool]):
        self.node = node
        self.tools: list[BaseTool | dict[str, Any]] = list(tools)
        wrapping = stack.with_hook("wrap_model_call")
        layer: _Layer | None = None
        alayer: _ALayer | None = None
        for middleware in reversed(wrapping):  # the first middleware is the outermost layer
            layer = _Layer(middleware, layer)
            alayer = _ALayer(middleware, alayer)
        self.layer = layer
        self.alayer = alayer
        self.max_attempts = model_attempts(stack)

    # ------------------------------------------------------------------ pure parts
    def _base_model(self, config: RunnableConfig) -> BaseChatModel:
        runnable = self.node.runnable(config)
        if isinstance(runnable, RunnableBinding):
            return cast("BaseChatModel", runnable.bound)
        return cast("BaseChatModel", runnable)

    def request(self, state: dict[str, Any], config: RunnableConfig) -> ModelRequest[Any]:
        """The request the layers see: the prune node's view of the thread, the system prompt
        apart (``system_message``), the agent's tools, the model."""
        from langchain.agents.middleware import ModelRequest

        messages = self.node.model_input(state)
        system: SystemMessage | None = None
        own = any(isinstance(m, SystemMessage) for m in state.get("messages") or [])
        first = messages[0] if messages else None
        if isinstance(first, SystemMessage) and not own:
            system = first  # the configured prompt, which model_input put first
            messages = messages[1:]
        return ModelRequest(
            model=self._base_model(config),
            messages=list(messages),  # type: ignore[arg-type]
            system_message=system,
            tools=list(self.tools),
            state=state,  # type: ignore[arg-type]
            runtime=current_runtime(),  # type: ignore[arg-type]
        )

    def _runnable(
        self, request: ModelRequest[Any], config: RunnableConfig
    ) -> tuple[Runnable[LanguageModelInput, BaseMessage] | None, str]:
        """The model to stream (``None``: the node's own binding) and its name for pricing."""
        default_model = request.model is self._base_model(config)
        same_tools = len(request.tools) == len(self.tools) and all(
            a is b for a, b in zip(request.tools, self.tools, strict=True)
        )
        if (
            default_model
            and same_tools
            and request.tool_choice is None
            and not request.model_settings
        ):
            return None, self.node.model_for(config)
        settings = dict(request.model_settings)
        if request.tool_choice is not None:
            settings["tool_choice"] = request.tool_choice
        if request.tools:
            runnable = request.model.bind_tools(request.tools, **settings)
        else:
            settings.pop("tool_choice", None)
            runnable = request.model.bind(**settings) if settings else request.model
        name = self.node.model_for(config) if default_model else _model_name(request.model)
        return runnable, name

    def _update(
        self, state: dict[str, Any], composed: _Composed, calls: list[_Call]
    ) -> dict[str, Any] | list[Command[Any]]:
        update: dict[str, Any] = {
            "messages": list(composed.response.result),
            "run_steps": run_steps(state) + 1,
        }
        if calls:
            usage = Usage()
            cost: Decimal | None = Decimal(0)
            for call in calls:
                part = self.node.state_update(
                    state, call.message, call.messages, call.attempt, model=call.model
                )
                usage = usage + Usage.from_dict(part["usage"])
                cost = None if cost is None or part["cost_usd"] is None else cost + part["cost_usd"]
            update["usage"] = usage.to_dict()
            update["cost_usd"] = cost
        if composed.response.structured_response is not None:
            update["structured_response"] = composed.response.structured_response
        if composed.commands:
            return [Command(update=update), *composed.commands]
        return update

    @staticmethod
    def _messages(request: ModelRequest[Any]) -> list[BaseMessage]:
        if request.system_message is not None:
            return [request.system_message, *request.messages]
        return list(request.messages)

    # ------------------------------------------------------------------ async shell
    async def ainvoke(
        self, state: dict[str, Any], config: RunnableConfig
    ) -> dict[str, Any] | list[Command[Any]]:
        request = self.request(state, config)
        model = self.node.model_for(config)
        self.node.budget.checked(state, self._messages(request), model=model)
        calls: list[_Call] = []
        base = _AExecute(self, config, calls)
        composed = (
            await self.alayer(request, base) if self.alayer else _Composed(await base(request))
        )
        return self._update(state, composed, calls)

    # ------------------------------------------------------------------ sync shell
    def invoke(
        self, state: dict[str, Any], config: RunnableConfig
    ) -> dict[str, Any] | list[Command[Any]]:
        request = self.request(state, config)
        model = self.node.model_for(config)
        self.node.budget.checked(state, self._messages(request), model=model)
        calls: list[_Call] = []
        base = _Execute(self, config, calls)
        composed = self.layer(request, base) if self.layer else _Composed(base(request))
        return self._update(state, composed, calls)


def _model_name(model: BaseChatModel) -> str:
    for attr in ("model_name", "model"):
        value = getattr(model, attr, None)
        if isinstance(value, str):
            return value
    return type(model).__name__


class _Execute:
    """The innermost handler: one streamed call of the node (with its retries).

    When a middleware calls it again after a call that failed with tokens already streamed
    (``ModelRetryMiddleware``, ``ModelFallbackMiddleware``), a ``retry`` chunk goes out first,
    as for the node's own retries: consumers discard that partial output.
    """

    def __init__(self, owner: MiddlewareModelNode, config: RunnableConfig, calls: list[_Call]):
        self.owner = owner
        self.config = config
        self.calls = calls
        self.failed: StreamAgentError | None = None  # the last call, when it left partial output
        self.number = 0

    def _before(self) -> None:
        self.number += 1
        failed, self.failed = self.failed, None
        if failed is None:
            return
        event = {
            EVENT_KEY: RETRY_EVENT,
            "agent": self.owner.node.name,
            "attempt": self.number - 1,
            "owner": "middleware",
            "error": failed.to_dict(),
            "discard_partial_output": True,
        }
        sink = sink_of(self.config) if self.owner.node._fast_path() else None
        if sink is not None:  # in order with the tokens it withdraws
            sink.put((graph_namespace(self.config.get("metadata") or {}), "custom", event))
        else:
            get_stream_writer()(event)

    def _after_error(self, error: BaseException) -> None:
        if isinstance(error, StreamAgentError) and error.partial_output:
            self.failed = error

    def __call__(self, request: ModelRequest[Any]) -> ModelResponse[Any]:
        from langchain.agents.middleware import ModelResponse

        self._before()
        runnable, model = self.owner._runnable(request, self.config)
        messages = self.owner._messages(request)
        try:
            message, attempt = self.owner.node.call(
                messages,
                self.config,
                model=model,
                runnable=runnable,
                max_attempts=self.owner.max_attempts,
            )
        except StreamAgentError as error:
            self._after_error(error)
            raise
        self.calls.append(_Call(message, messages, attempt, model))
        return ModelResponse(result=[message])


class _AExecute(_Execute):
    """Async twin of :class:`_Execute`."""

    async def __call__(self, request: ModelRequest[Any]) -> ModelResponse[Any]:  # type: ignore[override]
        from langchain.agents.middleware import ModelResponse

        self._before()
        runnable, model = self.owner._runnable(request, self.config)
        messages = self.owner._messages(request)
        try:
            message, attempt = await self.owner.node.acall(
                messages,
                self.config,
                model=model,
                runnable=runnable,
                max_attempts=self.owner.max_attempts,
            )
        except StreamAgentError as error:
            self._after_error(error)
            raise
        self.calls.append(_Call(message, messages, attempt, model))
        return ModelResponse(result=[message])
