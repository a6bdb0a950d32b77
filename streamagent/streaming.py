"""Typed stream chunks over LangGraph's native streaming.

``astream_chunks`` / ``stream_chunks`` run any compiled graph that contains the agent (alone
or nested) with ``stream_mode=["messages", "updates", "custom"], subgraphs=True`` and turn
what LangGraph emits into :class:`StreamChunk` values:

========================  =================================================================
``content``               a text delta (``.content``)
``reasoning``             a reasoning-summary delta (``.content``; Responses API models)
``tool_call_delta``       partial tool-call arguments as they stream (``.tool_call``)
``tool_call``             a complete, parsed tool call (``.tool_call``: id, name, args)
``tool_result``           a tool's result (``.tool_result``: tool_call_id, name, content, status)
``retry``                 a model call is retried: discard that call's partial output (``.retry``)
``interrupt``             the run paused for human approval (``.interrupt``); resume with
                          ``resume=...``
``done``                  usage (input/cached/output/reasoning tokens), ``cost_usd``
                          (``Decimal`` or ``None`` = unknown), latency, time to first token
``error``                 a classified, readable error (``.error``); the stream then ends
========================  =================================================================

The translation is pure (:class:`ChunkTranslator`); the async and sync functions are thin
shells over ``graph.astream`` / ``graph.stream``.

Example:
    >>> from streamagent.streaming import StreamChunk
    >>> StreamChunk(type="content", content="Hi").to_dict()
    {'type': 'content', 'content': 'Hi'}
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Generator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal, cast

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    RemoveMessage,
    ToolMessage,
    convert_to_messages,
)
from langchain_core.runnables import RunnableConfig
from langgraph.errors import GraphRecursionError
from langgraph.pregel import Pregel
from langgraph.types import Command, StreamMode

from streamagent._token_sink import SINK_KEY, TokenSink
from streamagent._usage_tracker import AgentUsage, UsageTracker
from streamagent.config import fast_path_from_env
from streamagent.cost import Usage
from streamagent.errors import (
    AgentRunError,
    InvalidInputError,
    StepLimitExceededError,
    StreamAgentError,
    UserError,
)
from streamagent.input_policy import check_messages, check_thread_id
from streamagent.memory.turns import Turn, begin_turn
from streamagent.nodes._progress import TOOL_RESULT_EVENT
from streamagent.nodes._responses import reasoning_text
from streamagent.nodes.model import RETRY_EVENT
from streamagent.structured import structured_json

__all__ = [
    "ChunkTranslator",
    "ChunkType",
    "StreamChunk",
    "astream_chunks",
    "prepare_input",
    "stream_chunks",
]

logger = logging.getLogger(__name__)

ChunkType = Literal[
    "content",
    "reasoning",
    "tool_call_delta",
    "tool_call",
    "tool_result",
    "retry",
    "interrupt",
    "structured",
    "done",
    "error",
]
_STREAM_MODES: list[StreamMode] = ["messages", "updates", "custom"]


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One typed event of an agent run. Only the fields of its ``type`` are set."""

    type: ChunkType
    content: str | None = None
    tool_call: dict[str, Any] | None = None
    tool_result: dict[str, Any] | None = None
    retry: dict[str, Any] | None = None
    interrupt: list[dict[str, Any]] | None = None
    usage: dict[str, int] | None = None
    cost_usd: Decimal | None = None
    latency_seconds: float | None = None
    time_to_first_token_seconds: float | None = None
    error: dict[str, Any] | None = None
    agent: str | None = None
    namespace: tuple[str, ...] = field(default=())
    #: ``structured`` only: the validated ``response_format`` value
    structured: Any = None
    #: ``done`` only: per agent ``{"usage": {...}, "cost_usd": Decimal | None}``
    agents: dict[str, dict[str, Any]] | None = None
    #: ``done`` only: True when some call's usage is tiktoken's estimate (the server sent none)
    usage_estimated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict without unset fields (``cost_usd`` as a string, exact)."""
        out: dict[str, Any] = {"type": self.type}
        for key in (
            "content",
            "tool_call",
            "tool_result",
            "retry",
            "interrupt",
            "usage",
            "latency_seconds",
            "time_to_first_token_seconds",
            "error",
            "agent",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.type == "structured":
            out["structured"] = structured_json(self.structured)
        if self.type == "done":
            out["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
            if self.usage_estimated:
                out["usage_estimated"] = True
            if self.agents is not None:
                out["agents"] = {
                    name: {
                        "usage": item["usage"],
                        "cost_usd": None if item["cost_usd"] is None else str(item["cost_usd"]),
                    }
                    for name, item in self.agents.items()
                }
        if self.namespace:
            out["namespace"] = list(self.namespace)
        return out


def prepare_input(messages: Any, *, allow_privileged_roles: bool = False) -> list[BaseMessage]:
    """Validate user input: a non-empty list of messages, dicts, tuples or strings, under the
    input policy of :mod:`streamagent.input_policy` (privileged roles only when allowed).

    >>> [m.type for m in prepare_input([{"role": "user", "content": "hi"}])]
    ['human']
    """
    if isinstance(messages, str | BaseMessage | Mapping):
        messages = [messages]
    if not isinstance(messages, Sequence) or len(messages) == 0:
        raise InvalidInputError("messages must be a non-empty list of messages")
    try:
        converted = convert_to_messages(messages)
    except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
        raise InvalidInputError(f"invalid message: {exc}") from exc
    check_messages(converted, allow_privileged_roles=allow_privileged_roles)
    for message in converted:
        if message.id is None:
            message.id = str(uuid.uuid4())
    return converted


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
        agent = (metadata or {}).get("streamagent_agent")
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
        if isinstance(data, Mapping) and data.get("streamagent") == TOOL_RESULT_EVENT:
            self._result_ids.add(str(data.get("tool_call_id")))
            result = {k: data.get(k) for k in ("tool_call_id", "name", "content", "status")}
            agent = data.get("agent")
            return [
                StreamChunk(
                    type="tool_result", tool_result=result, agent=agent, namespace=namespace
                )
            ]
        if isinstance(data, Mapping) and data.get("streamagent") == RETRY_EVENT:
            info = {k: v for k, v in data.items() if k not in ("streamagent", "agent")}
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


def _run_config(thread_id: str | None, config: RunnableConfig | None) -> RunnableConfig:
    """The run's config; no thread id anywhere means a new thread (an empty one is refused
    by :func:`_graph_input`, never replaced)."""
    cfg: dict[str, Any] = dict(config or {})
    configurable = dict(cfg.get("configurable") or {})
    if thread_id is not None:
        configurable["thread_id"] = thread_id
    elif configurable.get("thread_id") is None:
        configurable["thread_id"] = str(uuid.uuid4())
    cfg["configurable"] = configurable
    return cast("RunnableConfig", cfg)


def _with_handler(config: RunnableConfig, handler: BaseCallbackHandler) -> RunnableConfig:
    """``config`` with one more callback handler (a list or a manager, left unchanged)."""
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        manager = callbacks.copy()
        manager.add_handler(handler, inherit=True)
        return cast("RunnableConfig", {**config, "callbacks": manager})
    return cast("RunnableConfig", {**config, "callbacks": [*(callbacks or []), handler]})


async def _aroll_back(
    graph: Pregel[Any, Any, Any, Any], graph_input: Any, config: RunnableConfig, exc: BaseException
) -> None:
    """After an error caused by the input, remove that input from the thread (async)."""
    rollback = _rollback_update(graph, graph_input, exc)
    if rollback is None:
        return
    try:
        await graph.aupdate_state(config, rollback, as_node="model")
    except Exception:
        logger.exception("could not remove the rejected input from the thread")


async def _acheck_pending(graph: Pregel[Any, Any, Any, Any], config: RunnableConfig) -> None:
    """Refuse ``messages=None`` without a checkpointer or a pending run (async)."""
    _need_checkpointer(graph)
    _need_pending((await graph.aget_state(config)).next)


def _graph_input(
    messages: Any, resume: Any, config: RunnableConfig, *, allow_privileged_roles: bool
) -> Any:
    check_thread_id((config.get("configurable") or {}).get("thread_id"))
    if resume is not None:
        return Command(resume=resume)
    if messages is None:  # continue the thread's pending run (the process died mid-turn)
        return None
    return {"messages": prepare_input(messages, allow_privileged_roles=allow_privileged_roles)}


def _need_checkpointer(graph: Pregel[Any, Any, Any, Any]) -> None:
    """``messages=None`` continues a pending run, which lives in the checkpointer."""
    if graph.checkpointer in (None, False):
        raise InvalidInputError(
            "messages=None continues a thread's pending run, which needs a checkpointer"
        )


def _need_pending(next_nodes: Sequence[str]) -> None:
    if not next_nodes:
        raise InvalidInputError("this thread has no pending run to continue: send a message")


def _rollback_update(
    graph: Pregel[Any, Any, Any, Any], graph_input: Any, exc: BaseException
) -> dict[str, Any] | None:
    """After an error caused by the input, the update that removes it from the thread."""
    caused_by_input = isinstance(exc, UserError) or getattr(exc, "rejects_input", False)
    if not caused_by_input or graph.checkpointer in (None, False):
        return None
    if "model" not in graph.nodes or not isinstance(graph_input, dict):
        return None
    ids = [m.id for m in graph_input.get("messages", []) if getattr(m, "id", None)]
    return {"messages": [RemoveMessage(id=i) for i in ids]} if ids else None


class _GraphPump:
    """Runs ``graph.astream(..., subgraphs=True)`` in a task of its own, putting its parts
    into a :class:`~streamagent._token_sink.TokenSink` that the run's model nodes also put
    their tokens into (:mod:`streamagent._token_sink`) — unless ``direct_tokens`` is off (the
    fast path switched off): then every token comes through LangGraph. The reader owns the task:
    :meth:`stop` cancels it if it still runs and waits for the graph's clean-up (checkpoint
    writes, cancelled node tasks)."""

    __slots__ = ("sink", "task")

    def __init__(
        self,
        graph: Pregel[Any, Any, Any, Any],
        graph_input: Any,
        config: RunnableConfig,
        *,
        direct_tokens: bool = True,
        context: Any = None,
    ) -> None:
        self.sink = TokenSink()
        run_config = config
        if direct_tokens:  # the fast path: model nodes put their tokens here themselves
            configurable = dict(config.get("configurable") or {})
            configurable[SINK_KEY] = self.sink
            run_config = cast("RunnableConfig", {**config, "configurable": configurable})
        self.task = asyncio.get_running_loop().create_task(
            self._run(graph, graph_input, run_config, context)
        )

    async def _run(
        self,
        graph: Pregel[Any, Any, Any, Any],
        graph_input: Any,
        config: RunnableConfig,
        context: Any = None,
    ) -> None:
        sink = self.sink
        try:
            async for namespace, mode, data in graph.astream(
                graph_input, config, stream_mode=_STREAM_MODES, subgraphs=True, context=context
            ):
                sink.put((cast("tuple[str, ...]", namespace), mode, data))
        except BaseException as exc:
            sink.close(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            sink.close()

    async def stop(self) -> None:
        task = self.task
        if not task.done():
            task.cancel()
            # a second cancel of the reader stops this wait, not the clean-up
            await asyncio.wait((task,))
        if not task.cancelled():
            task.exception()  # mark it retrieved: the sink delivered any error


async def astream_chunks(
    graph: Pregel[Any, Any, Any, Any],
    messages: Any,
    *,
    thread_id: str | None = None,
    config: RunnableConfig | None = None,
    resume: Any = None,
    allow_privileged_roles: bool = False,
    context: Any = None,
    multitask: str | None = None,
    wait_seconds: float | None = None,
) -> AsyncGenerator[StreamChunk, None]:
    """Run ``graph`` on ``messages`` and yield typed chunks (async).

    ``messages`` are the *new* messages of this turn (the thread's history comes from the
    checkpointer). Pass ``messages=None, resume=decision`` to resume an approval interrupt, and
    ``messages=None`` alone to continue a run that did not finish (the process died mid-turn):
    it goes on from the last checkpoint, so the step that was running re-runs — tools are run
    *at least once* (make side effects idempotent, e.g. keyed by ``InjectedToolCallId``).
    Input is checked before anything is sent or written (:mod:`streamagent.input_policy`):
    ``system``/``developer``/``tool`` messages and assistant messages with tool calls are
    refused unless ``allow_privileged_roles=True``; an empty ``thread_id`` is refused.
    ``context`` is LangGraph's run context (``ToolRuntime.context`` / ``Runtime.context``).
    Errors never escape: they end the stream with one ``error`` chunk; a successful run ends
    with ``done``.

    With a streamagent Redis saver, one turn at a time runs per thread
    (:mod:`streamagent.memory.turns`): ``multitask="reject"`` (default) ends a turn on a busy
    thread with a retryable ``ThreadBusyError`` chunk before anything is stored;
    ``"enqueue"`` waits for the thread up to ``wait_seconds`` first.

    Example:
        >>> import asyncio
        >>> from streamagent import build_agent, AgentConfig, ModelConfig
        >>> from streamagent.testing import ScriptedOpenAIServer
        >>> async def main() -> list[str]:
        ...     with ScriptedOpenAIServer(["Hello there"]) as server:
        ...         cfg = AgentConfig(model=ModelConfig(base_url=server.base_url, api_key="t"))
        ...         agent = build_agent(config=cfg, checkpointer=False)
        ...         return [c.type async for c in astream_chunks(agent, "hi", thread_id="t1")]
        >>> asyncio.run(main())[-1]
        'done'
    """
    tracker = UsageTracker()
    translator = ChunkTranslator(tracker=tracker)
    graph_input: Any = None
    run_config = _run_config(thread_id, config)
    pump: _GraphPump | None = None
    turn: Turn | None = None
    try:
        graph_input = _graph_input(
            messages, resume, run_config, allow_privileged_roles=allow_privileged_roles
        )
        if graph_input is None:  # continuing a pending run: only where there is one
            await _acheck_pending(graph, run_config)
        turn = await begin_turn(
            graph.checkpointer, run_config, multitask, wait_seconds=wait_seconds
        )
        if turn is not None:
            run_config = turn.config(run_config)
        pump = _GraphPump(
            graph,
            graph_input,
            _with_handler(run_config, tracker),
            direct_tokens=fast_path_from_env(),
            context=context,
        )
        take = pump.sink.take
        while (parts := await take()) is not None:
            for namespace, mode, data in parts:
                for chunk in translator.feed(namespace, mode, data):
                    yield chunk
    except Exception as exc:  # noqa: BLE001 - errors end the stream as an error chunk
        if pump is not None:
            await pump.stop()
        await _aroll_back(graph, graph_input, run_config, exc)
        yield translator.error(exc)
        return
    finally:
        try:
            if pump is not None:
                await pump.stop()
        finally:
            if turn is not None:
                await turn.release()
    yield translator.done()


def stream_chunks(
    graph: Pregel[Any, Any, Any, Any],
    messages: Any,
    *,
    thread_id: str | None = None,
    config: RunnableConfig | None = None,
    resume: Any = None,
    allow_privileged_roles: bool = False,
    context: Any = None,
) -> Generator[StreamChunk, None, None]:
    """Synchronous twin of :func:`astream_chunks` (uses ``graph.stream``)."""
    tracker = UsageTracker()
    translator = ChunkTranslator(tracker=tracker)
    graph_input: Any = None
    run_config = _run_config(thread_id, config)
    try:
        graph_input = _graph_input(
            messages, resume, run_config, allow_privileged_roles=allow_privileged_roles
        )
        if graph_input is None:
            _need_checkpointer(graph)
            _need_pending(graph.get_state(run_config).next)
        for namespace, mode, data in graph.stream(
            graph_input,
            _with_handler(run_config, tracker),
            stream_mode=_STREAM_MODES,
            subgraphs=True,
            context=context,
        ):
            yield from translator.feed(cast("tuple[str, ...]", namespace), mode, data)
    except Exception as exc:  # noqa: BLE001 - errors end the stream as an error chunk
        rollback = _rollback_update(graph, graph_input, exc)
        if rollback is not None:
            try:
                graph.update_state(run_config, rollback, as_node="model")
            except Exception:
                logger.exception("could not remove the rejected input from the thread")
        yield translator.error(exc)
        return
    yield translator.done()
