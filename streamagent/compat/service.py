"""``OpenAIService``: the TypeScript "OpenAI Streaming Service" API over the agent graph.

A thin layer for users of the old service: ``stream_completion`` yields the same typed chunks
as :func:`streamagent.astream_chunks`; ``complete_with_tools`` runs the tool loop to the end and
returns the result; ``register_tool`` accepts a LangChain tool, a (decorated) function or the
old ``{"type": "function", "function": {...}, "handler": fn}`` dict.

Example:
    >>> import asyncio
    >>> from streamagent.compat import OpenAIService
    >>> from streamagent.config import create_openai_config
    >>> from streamagent.testing import ScriptedOpenAIServer
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> async def main() -> str:
    ...     with ScriptedOpenAIServer(["Hi from the service"]) as server:
    ...         svc = OpenAIService(create_openai_config(baseURL=server.base_url, apiKey="t"),
    ...                             checkpointer=InMemorySaver())
    ...         result = await svc.complete_with_tools([{"role": "user", "content": "hi"}], "s1")
    ...         return result.content
    >>> asyncio.run(main())
    'Hi from the service'
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from streamagent.config import AgentConfig, create_openai_config
from streamagent.errors import (
    AgentRunError,
    ConfigurationError,
    ModelRequestError,
    StreamAgentError,
)
from streamagent.graphs.agent import build_agent
from streamagent.observability.observer import AgentObserver
from streamagent.streaming import StreamChunk, astream_chunks, stream_chunks
from streamagent.tools.custom import ToolLike

__all__ = ["CompletionResult", "OpenAIService"]


@dataclass
class CompletionResult:
    """What ``complete_with_tools`` returns: the final text and everything that happened."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: Decimal | None = None
    latency_seconds: float | None = None
    retries: int = 0
    interrupt: list[dict[str, Any]] | None = None


class OpenAIService:
    """The old service's API. The graph is compiled on first use (no I/O in the constructor).

    ``messages`` follow the input policy of
    :mod:`streamagent.streaming.input_policy`: the old service's
    ``system`` messages need ``allow_privileged_roles=True`` (or ``AgentConfig.system_prompt``).
    """

    def __init__(
        self,
        config: AgentConfig | Mapping[str, Any] | None = None,
        *,
        model: BaseChatModel | None = None,
        tools: Sequence[ToolLike] = (),
        checkpointer: BaseCheckpointSaver[Any] | Literal[False] | None = None,
        observer: AgentObserver | None = None,
        name: str = "agent",
        allow_privileged_roles: bool = False,
    ) -> None:
        if isinstance(config, Mapping):
            config = create_openai_config(**config)
        self.config = config or AgentConfig()
        self._model = model
        self._tools: list[ToolLike] = list(tools)
        self._checkpointer = checkpointer
        self._observer = observer
        self._name = name
        #: accept system/developer/tool messages (and assistant messages with tool calls) in
        #: ``messages``; off by default: see :mod:`streamagent.streaming.input_policy`
        self.allow_privileged_roles = allow_privileged_roles
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None

    @property
    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The compiled agent graph (built on first access)."""
        if self._graph is None:
            self._graph = build_agent(
                model=self._model,
                tools=self._tools,
                config=self.config,
                name=self._name,
                checkpointer=self._checkpointer,
                observer=self._observer,
            )
        return self._graph

    def register_tool(self, tool: ToolLike) -> BaseTool:
        """Add a tool (LangChain tool, function, or the old dict form with ``handler``)."""
        from streamagent.tools import as_tool

        converted = as_tool(tool)
        existing = {as_tool(t).name for t in self._tools}
        if converted.name in existing:
            raise ConfigurationError(f"a tool named {converted.name!r} is already registered")
        self._tools.append(converted)
        self._graph = None  # recompiled with the new tool on next use
        return converted

    async def stream_completion(
        self, messages: Any, session_id: str, **kwargs: Any
    ) -> AsyncIterator[StreamChunk]:
        """Stream one turn of session ``session_id`` as typed chunks (ends with done/error)."""
        kwargs.setdefault("allow_privileged_roles", self.allow_privileged_roles)
        async for chunk in astream_chunks(self.graph, messages, thread_id=session_id, **kwargs):
            yield chunk

    def stream_completion_sync(
        self, messages: Any, session_id: str, **kwargs: Any
    ) -> Iterator[StreamChunk]:
        """Synchronous :meth:`stream_completion`."""
        kwargs.setdefault("allow_privileged_roles", self.allow_privileged_roles)
        yield from stream_chunks(self.graph, messages, thread_id=session_id, **kwargs)

    async def complete_with_tools(
        self, messages: Any, session_id: str, **kwargs: Any
    ) -> CompletionResult:
        """Run the turn (tool loop included) and return the result; raises on failure."""
        result = CompletionResult()
        async for chunk in self.stream_completion(messages, session_id, **kwargs):
            _collect(result, chunk)
        return result

    def complete_with_tools_sync(
        self, messages: Any, session_id: str, **kwargs: Any
    ) -> CompletionResult:
        """Synchronous :meth:`complete_with_tools`."""
        result = CompletionResult()
        for chunk in self.stream_completion_sync(messages, session_id, **kwargs):
            _collect(result, chunk)
        return result


def _collect(result: CompletionResult, chunk: StreamChunk) -> None:
    if chunk.type == "content":
        result.content += chunk.content or ""
    elif chunk.type == "retry":
        result.retries += 1
        result.content = ""  # the retried call's partial output is discarded
    elif chunk.type == "tool_call" and chunk.tool_call is not None:
        result.tool_calls.append(chunk.tool_call)
        result.content = ""  # text before a tool call is not the final answer
    elif chunk.type == "tool_result" and chunk.tool_result is not None:
        result.tool_results.append(chunk.tool_result)
    elif chunk.type == "interrupt":
        result.interrupt = chunk.interrupt
    elif chunk.type == "done":
        result.usage = chunk.usage or {}
        result.cost_usd = chunk.cost_usd
        result.latency_seconds = chunk.latency_seconds
    elif chunk.type == "error":
        raise _reraise(chunk.error or {})


def _reraise(info: Mapping[str, Any]) -> StreamAgentError:
    from streamagent import errors

    cls = getattr(errors, str(info.get("type")), None)
    message = str(info.get("message", "the agent run failed"))
    attempts = int(info.get("attempts", 1))
    if isinstance(cls, type) and issubclass(cls, ModelRequestError):
        wait = info.get("retry_after_seconds")
        return cls(
            message,
            attempts=attempts,
            retry_after_seconds=float(wait) if isinstance(wait, int | float) else None,
        )
    if isinstance(cls, type) and issubclass(cls, StreamAgentError):
        try:
            return cls(message, attempts=attempts)
        except TypeError:
            pass
    return AgentRunError(message, attempts=attempts)
