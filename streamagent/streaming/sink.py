"""A direct, in-loop hand-off of a run's stream parts to the task that reads them.

LangGraph hands every ``messages``-mode token from the node's task to the reader through
``loop.call_soon_threadsafe`` (a self-pipe write and read per token), a waiter *task* that is
created anew for every token, and an ``asyncio.wait`` over the step's futures. Under paced load
that is ~45 % of the client's CPU per token. :func:`streamagent.astream_chunks` instead puts a
:class:`TokenSink` into the run's ``configurable`` (under :data:`SINK_KEY`; keys starting with
``__`` never reach checkpoint metadata or traces): the model node (async path) tags its model
call ``nostream`` so LangGraph does not stream it too, and puts each chunk here, in LangGraph's
own ``(namespace, "messages", (chunk, metadata))`` shape; the graph's other parts (updates,
custom events, tokens of models that are not streamagent's) come through LangGraph as before,
pumped into the same sink by another task. One FIFO keeps their order.

Without a sink (``graph.astream`` called directly, LangGraph Server / Studio, the sync path)
nothing changes: tokens stream through LangGraph's ``messages`` mode.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import Any

from streamagent._upstream.langgraph_private import PUSH_MARKER
from streamagent.streaming.protocol import SINK_KEY

__all__ = ["SINK_KEY", "TokenSink", "graph_namespace", "sink_of"]


_PUSH = PUSH_MARKER  # LangGraph's ``langgraph_path`` marker of a pushed task (checked there)
_NS_SEP = "|"


class TokenSink:
    """A FIFO of stream parts with one reader; :meth:`put` from any task of its loop.

    The reader takes everything queued at once (:meth:`take`); :meth:`close` ends the stream,
    with the exception that ended it, if any.
    """

    __slots__ = ("_closed", "_error", "_items", "_waiter", "loop")

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._items: deque[tuple[tuple[str, ...], str, Any]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    def put(self, part: tuple[tuple[str, ...], str, Any]) -> None:
        """Queue one ``(namespace, mode, data)`` part and wake the reader."""
        self._items.append(part)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """No more parts: the reader gets what is queued, then ``error`` (if any) is raised."""
        self._closed = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def take(self) -> list[tuple[tuple[str, ...], str, Any]] | None:
        """Every queued part (waiting for one), or ``None`` once closed and drained.

        Raises the error the stream was closed with, after the parts queued before it.
        """
        while not self._items:
            if self._closed:
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                return None
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        items = list(self._items)
        self._items.clear()
        return items


def sink_of(config: Mapping[str, Any] | None) -> TokenSink | None:
    """The run's sink, when :func:`streamagent.astream_chunks` is reading it *on this loop*.

    A nested run on another loop (a sync node that calls ``asyncio.run(agent.ainvoke(...))``
    in a worker thread inherits the configurable) must not touch it: it streams through
    LangGraph, whose hand-off is thread-safe.
    """
    configurable = (config or {}).get("configurable") or {}
    sink = configurable.get(SINK_KEY)
    if not isinstance(sink, TokenSink):
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return sink if sink.loop is loop else None


def graph_namespace(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The namespace LangGraph's ``messages`` mode gives a model call made by a task.

    The task's checkpoint namespace without the task's own segment — and without one more
    per enclosing ``@task`` call, which nests its segment under its caller's (its
    ``langgraph_path`` is ``(PUSH, caller's path, index, True)``).
    """
    checkpoint_ns = metadata.get("langgraph_checkpoint_ns") or ""
    segments = tuple(str(checkpoint_ns).split(_NS_SEP)) if checkpoint_ns else ()
    path: Any = metadata.get("langgraph_path") or ()
    own = 1
    while len(path) == 4 and path[0] == _PUSH and path[3] is True:
        own += 1
        path = path[1]
    return segments[: max(len(segments) - own, 0)]
