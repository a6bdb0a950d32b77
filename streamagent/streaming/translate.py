"""Pure translation of LangGraph stream parts into :class:`StreamChunk` values.

No I/O: :class:`ChunkTranslator` is fed ``(namespace, mode, data)`` parts (LangGraph's
``stream_mode=["messages", "updates", "custom"], subgraphs=True`` shape) and returns chunks; it
keeps the run's usage, cost and time to first token for the final ``done`` chunk.

Example:
    >>> from langchain_core.messages import AIMessageChunk
    >>> t = ChunkTranslator()
    >>> [c.content for c in t.feed((), "messages", (AIMessageChunk(content="Hi"), {}))]
    ['Hi']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, cast

from langchain_core.messages import AIMessage, AIMessageChunk, ToolMessage
from langgraph.errors import GraphRecursionError

from streamagent.accounting.cost import Usage
from streamagent.accounting.usage import AgentUsage, UsageTracker
from streamagent.errors import AgentRunError, StepLimitExceededError, StreamAgentError
from streamagent.llm.responses import reasoning_text
from streamagent.streaming.chunk import StreamChunk
from streamagent.streaming.protocol import (
    AGENT_METADATA_KEY,
    EVENT_KEY,
    RETRY_EVENT,
    TOOL_RESULT_EVENT,
)

__all__ = ["ChunkTranslator"]

logger = logging.getLogger("streamagent.streaming")

_HOOK_SUFFIXES = (".before_agent", ".before_model", ".after_model", ".after_agent")


def _middleware_hook(metadata: Mapping[str, Any] | None) -> bool:
    """Whether a model streamed inside a middleware hook node (``"<name>.before_model"``)."""
    node = (metadata or {}).get("langgraph_node")
    return isinstance(node, str) and node.endswith(_HOOK_SUFFIXES)


def _agent_of(namespace: tuple[str, ...]) -> str | None:
    return namespace[-1].split(":", 1)[0] if namespace else None


class ChunkTranslator:
    """Pure translation of LangGraph stream parts into :class:`StreamChunk` values."""

    def __init__(self, *, tracker: UsageTracker | None = None) -> None:
        #: other chat models' calls of the run (not streamagent's), see _usage_tracker
        self.tracker = tracker
        self.by_agent: dict[str, AgentUsage] = {}
        self._ns_agent: dict[tuple[str, ...], str] = {}
        self.started = time.perf_counter()
        self.first_token_at: float | None = None
        self.usage = Usage()
        self.cost_usd: Decimal | None = Decimal(0)
        self.cost_known = True
        self.usage_estimated = False
        self._streamed_ids: set[str] = set()
        self._partial: dict[str, list[str]] = {}
        self._interrupt_ids: set[str] = set()
        self._namespaces: set[tuple[str, ...]] = set()
        # (namespace, node) pairs whose node ran a subgraph: the node's update only repeats
        # what the subgraph already reported (its messages, usage, interrupts)
        self._subgraph_nodes: set[tuple[tuple[str, ...], str]] = set()
        # the agent of each tool call (its result carries it) and of the run (``done``)
        self._call_agents: dict[str, str | None] = {}
        self._run_agent: str | None = None
        # tool_call ids reported in tool_call / tool_result chunks (a hand-off's ToolMessage
        # reaches only the parent's update: it is reported from there)
        self._call_ids: set[str] = set()
        self._result_ids: set[str] = set()
        self._call_args: dict[str, dict[str, Any]] = {}

    def _mark_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def feed(self, namespace: tuple[str, ...], mode: str, data: Any) -> list[StreamChunk]:
        if namespace and namespace not in self._namespaces:
            self._namespaces.add(namespace)
            for depth, task in enumerate(namespace):
                self._subgraph_nodes.add((namespace[:depth], task.split(":", 1)[0]))
        if mode == "messages":
            return self._messages(namespace, data)
        if mode == "updates":
            return self._updates(namespace, data)
        if mode == "custom":
            return self._custom(namespace, data)
        return []

    def _messages(self, namespace: tuple[str, ...], data: Any) -> list[StreamChunk]:
        message, metadata = data
        agent = (metadata or {}).get(AGENT_METADATA_KEY)
        if agent is None:  # not the agent's model: a model of the user's graph, or middleware's
            if _middleware_hook(metadata):
                return []  # e.g. a summary written in before_model is not the agent's answer
            agent = _agent_of(namespace)
        out: list[StreamChunk] = []
        if isinstance(message, AIMessageChunk):
            if message.id:
                self._streamed_ids.add(message.id)
            thought = reasoning_text(message)
            if thought:  # a reasoning summary (Responses API)
                self._mark_token()
                out.append(
                    StreamChunk(type="reasoning", content=thought, agent=agent, namespace=namespace)
                )
            text = message.text
            if text:
                self._mark_token()
                out.append(
                    StreamChunk(type="content", content=text, agent=agent, namespace=namespace)
                )
            for tc in message.tool_call_chunks:
                self._mark_token()
                out.append(
                    StreamChunk(
                        type="tool_call_delta",
                        tool_call={
                            "index": tc.get("index"),
                            "id": tc.get("id"),
                            "name": tc.get("name"),
                            "args_delta": tc.get("args") or "",
                        },
                        agent=agent,
                        namespace=namespace,
                    )
                )
        elif (
            isinstance(message, AIMessage) and message.id not in self._streamed_ids and message.text
        ):
            # a model that does not stream: its whole reply arrives as one message
            self._mark_token()
            out.append(
                StreamChunk(type="content", content=message.text, agent=agent, namespace=namespace)
            )
        return out

    def _updates(self, namespace: tuple[str, ...], data: Any) -> list[StreamChunk]:
        out: list[StreamChunk] = []
        if not isinstance(data, Mapping):
            return out
        for node, update in data.items():
            if node == "__interrupt__":
                out.extend(self._interrupt(namespace, update))
                continue
            if (namespace, node) in self._subgraph_nodes:
                if isinstance(update, Mapping):
                    out.extend(self._handed_over(namespace, node, update))
                continue
            # a node that returned Commands reports a list of updates
            for part in update if isinstance(update, list | tuple) else (update,):
                if isinstance(part, Mapping):
                    out.extend(self._node_update(namespace, part))
        return out

    def _own_usage(self, namespace: tuple[str, ...], update: Mapping[str, Any]) -> None:
        """A streamagent node's usage and cost, in the totals and under its agent."""
        usage = Usage.from_dict(update["usage"] or {})
        self.usage = self.usage + usage
        cost = update.get("cost_usd")
        if cost is None:
            self.cost_known = False
        elif self.cost_usd is not None:
            self.cost_usd += cost
        named = [
            m.name for m in update.get("messages") or () if isinstance(m, AIMessage) and m.name
        ]
        if named:
            self._ns_agent[namespace] = str(named[0])
        agent = self._ns_agent.get(namespace) or _agent_of(namespace) or "agent"
        self.by_agent.setdefault(agent, AgentUsage()).add(usage, cost)

    def _node_update(
        self, namespace: tuple[str, ...], update: Mapping[str, Any]
    ) -> list[StreamChunk]:
        if "usage" in update:
            self._own_usage(namespace, update)
        out: list[StreamChunk] = []
        if "structured_response" in update:
            out.append(
                StreamChunk(
                    type="structured",
                    structured=update["structured_response"],
                    agent=_agent_of(namespace),
                    namespace=namespace,
                )
            )
        for message in update.get("messages") or []:
            if isinstance(message, AIMessage) and message.response_metadata.get("usage_estimated"):
                self.usage_estimated = True
            out.extend(self._message_update(namespace, message))
        return out

    def _handed_over(
        self, namespace: tuple[str, ...], node: str, update: Mapping[str, Any]
    ) -> list[StreamChunk]:
        """ToolMessages of a subgraph's calls that only its parent's update carries (a tool
        that handed over with ``Command(graph=Command.PARENT)``)."""
        out: list[StreamChunk] = []
        for message in update.get("messages") or []:
            if (
                isinstance(message, ToolMessage)
                and message.tool_call_id in self._call_ids
                and message.tool_call_id not in self._result_ids
            ):
                out.extend(replace(c, agent=node) for c in self._message_update(namespace, message))
        return out

    def _interrupt(self, namespace: tuple[str, ...], interrupts: Any) -> list[StreamChunk]:
        # a subgraph's interrupt surfaces again in every enclosing graph: report it once
        fresh = [i for i in interrupts if i.id not in self._interrupt_ids]
        if not fresh:
            return []
        self._interrupt_ids.update(i.id for i in fresh)
        return [
            StreamChunk(
                type="interrupt",
                interrupt=[{"id": i.id, "value": i.value} for i in fresh],
                agent=_agent_of(namespace),
                namespace=namespace,
            )
        ]

    def _message_update(self, namespace: tuple[str, ...], message: Any) -> list[StreamChunk]:
        agent = _agent_of(namespace)
        if isinstance(message, AIMessage):
            agent = message.name or agent
            if not namespace or self._run_agent is None:
                self._run_agent = agent
            self._call_agents.update((tc["id"] or "", agent) for tc in message.tool_calls)
            self._call_agents.update(
                (tc.get("id") or "", agent) for tc in message.invalid_tool_calls
            )
            calls = [
                {"id": tc["id"], "name": tc["name"], "args": tc["args"]}
                for tc in message.tool_calls
            ] + [
                {
                    "id": tc.get("id"),
                    "name": tc.get("name"),
                    "args": None,
                    "invalid_args": tc.get("args"),
                    "error": tc.get("error"),
                }
                for tc in message.invalid_tool_calls
            ]
            # a middleware hook (after_model) may write the same AI message again: report a
            # call once, and again only when its arguments changed (a human edited them)
            seen = self._call_args
            fresh = [c for c in calls if not c["id"] or seen.get(str(c["id"])) != c]
            self._call_ids.update(str(c["id"]) for c in calls if c["id"])
            self._call_args.update((str(c["id"]), c) for c in calls if c["id"])
            return [
                StreamChunk(type="tool_call", tool_call=c, agent=agent, namespace=namespace)
                for c in fresh
            ]
        if isinstance(message, ToolMessage):
            if message.tool_call_id in self._result_ids:
                return []  # streamed when the call finished (the router's custom event)
            agent = self._call_agents.get(message.tool_call_id) or agent
            self._result_ids.add(message.tool_call_id)
            return [
                StreamChunk(
                    type="tool_result",
                    tool_result={
                        "tool_call_id": message.tool_call_id,
                        "name": message.name,
                        "content": message.text,
                        "status": message.status,
                    },
                    agent=agent,
                    namespace=namespace,
                )
            ]
        return []

    def _custom(self, namespace: tuple[str, ...], data: Any) -> list[StreamChunk]:
        if isinstance(data, Mapping) and data.get(EVENT_KEY) == TOOL_RESULT_EVENT:
            self._result_ids.add(str(data.get("tool_call_id")))
            result = {k: data.get(k) for k in ("tool_call_id", "name", "content", "status")}
            agent = data.get("agent")
            return [
                StreamChunk(
                    type="tool_result", tool_result=result, agent=agent, namespace=namespace
                )
            ]
        if isinstance(data, Mapping) and data.get(EVENT_KEY) == RETRY_EVENT:
            info = {k: v for k, v in data.items() if k not in (EVENT_KEY, "agent")}
            return [
                StreamChunk(type="retry", retry=info, agent=data.get("agent"), namespace=namespace)
            ]
        return []

    def done(self) -> StreamChunk:
        now = time.perf_counter()
        ttft = None if self.first_token_at is None else self.first_token_at - self.started
        usage = self.usage
        cost = self.cost_usd if self.cost_known else None
        agents = {
            name: AgentUsage(item.usage, item.cost_usd) for name, item in self.by_agent.items()
        }
        if self.tracker is not None:  # other chat models of the graph
            for name, item in self.tracker.by_agent.items():
                agents.setdefault(name, AgentUsage()).add(item.usage, item.cost_usd)
                usage = usage + item.usage
                cost = None if cost is None or item.cost_usd is None else cost + item.cost_usd
        return StreamChunk(
            type="done",
            usage=cast("dict[str, int]", dict(usage.to_dict())),
            cost_usd=cost,
            latency_seconds=now - self.started,
            time_to_first_token_seconds=ttft,
            agent=self._run_agent,
            usage_estimated=self.usage_estimated,
            agents={name: item.to_dict() for name, item in agents.items()},
        )

    @staticmethod
    def error(exc: BaseException) -> StreamChunk:
        if isinstance(exc, GraphRecursionError):
            err: StreamAgentError = StepLimitExceededError(
                f"the run exceeded LangGraph's recursion limit: {exc}"
            )
        elif isinstance(exc, StreamAgentError):
            err = exc
        else:
            logger.error("agent run failed", exc_info=exc)
            err = AgentRunError(f"the agent run failed: {type(exc).__name__}: {exc}")
        return StreamChunk(type="error", error=err.to_dict())
