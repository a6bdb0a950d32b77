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

The translation is pure (:class:`~streamagent.streaming.translate.ChunkTranslator`); the async
and sync functions here are thin shells over ``graph.astream`` / ``graph.stream``.

Example:
    >>> from streamagent.streaming import StreamChunk
    >>> StreamChunk(type="content", content="Hi").to_dict()
    {'type': 'content', 'content': 'Hi'}
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.pregel import Pregel
from langgraph.types import Command, StreamMode

from streamagent.accounting.usage import UsageTracker
from streamagent.config import fast_path_from_env
from streamagent.errors import InvalidInputError, UserError
from streamagent.memory.turns import Turn, begin_turn
from streamagent.streaming.chunk import StreamChunk, prepare_input
from streamagent.streaming.input_policy import check_thread_id
from streamagent.streaming.protocol import SINK_KEY, STREAM_MODES
from streamagent.streaming.sink import TokenSink
from streamagent.streaming.translate import ChunkTranslator

__all__ = ["astream_chunks", "stream_chunks"]

logger = logging.getLogger("streamagent.streaming")
_STREAM_MODES = cast("list[StreamMode]", list(STREAM_MODES))


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


def _roll_back(
    graph: Pregel[Any, Any, Any, Any], graph_input: Any, config: RunnableConfig, exc: BaseException
) -> None:
    """After an error caused by the input, remove that input from the thread."""
    rollback = _rollback_update(graph, graph_input, exc)
    if rollback is None:
        return
    try:
        graph.update_state(config, rollback, as_node="model")
    except Exception:
        logger.exception("could not remove the rejected input from the thread")


async def _aroll_back(
    graph: Pregel[Any, Any, Any, Any], graph_input: Any, config: RunnableConfig, exc: BaseException
) -> None:
    """Async twin of :func:`_roll_back`."""
    rollback = _rollback_update(graph, graph_input, exc)
    if rollback is None:
        return
    try:
        await graph.aupdate_state(config, rollback, as_node="model")
    except Exception:
        logger.exception("could not remove the rejected input from the thread")


def _check_pending(graph: Pregel[Any, Any, Any, Any], config: RunnableConfig) -> None:
    """Refuse ``messages=None`` without a checkpointer or a pending run."""
    _need_checkpointer(graph)
    _need_pending(graph.get_state(config).next)


async def _acheck_pending(graph: Pregel[Any, Any, Any, Any], config: RunnableConfig) -> None:
    """Async twin of :func:`_check_pending`."""
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
    into a :class:`~streamagent.streaming.sink.TokenSink` that the run's model nodes also put
    their tokens into (:mod:`streamagent.streaming.sink`) — unless ``direct_tokens`` is off (the
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
    Input is checked before anything is sent or written (:mod:`streamagent.streaming.input_policy`):
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
            _check_pending(graph, run_config)
        for namespace, mode, data in graph.stream(
            graph_input,
            _with_handler(run_config, tracker),
            stream_mode=_STREAM_MODES,
            subgraphs=True,
            context=context,
        ):
            yield from translator.feed(cast("tuple[str, ...]", namespace), mode, data)
    except Exception as exc:  # noqa: BLE001 - errors end the stream as an error chunk
        _roll_back(graph, graph_input, run_config, exc)
        yield translator.error(exc)
        return
    yield translator.done()
