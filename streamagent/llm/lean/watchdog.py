"""``stream_chunk_timeout`` for one async lean stream: one timer, re-armed only when it fires.

``ChatOpenAI`` waits for each chunk with ``asyncio.wait_for`` (a task per chunk);
:class:`ChunkWatchdog` keeps the same semantics with one ``TimerHandle`` per stream.
"""

from __future__ import annotations

import asyncio
import logging

from streamagent._upstream import langchain_openai_private as lco

__all__ = ["ChunkWatchdog"]

logger = logging.getLogger(__name__)


class ChunkWatchdog:
    """``stream_chunk_timeout`` for one async stream: one timer, re-armed only when it fires.

    ``waiting_since`` is the loop time at which the stream started waiting for its next
    parsed chunk (``None`` while the consumer holds a chunk): consumer time is not counted,
    keep-alive comments do not reset it — the semantics of ``ChatOpenAI``'s per-chunk
    ``asyncio.wait_for``, without a task per chunk. Build it inside the task it guards.
    """

    __slots__ = ("_handle", "_loop", "_task", "fired", "timeout", "waiting_since")

    def __init__(self, timeout: float | None) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self.timeout = timeout if timeout and timeout > 0 else 0.0
        self.fired = False
        self.waiting_since: float | None = self._loop.time()
        self._handle: asyncio.TimerHandle | None = None
        if self.timeout:
            self._handle = self._loop.call_at(self.waiting_since + self.timeout, self._check)

    def now(self) -> float:
        return self._loop.time()

    def _check(self) -> None:
        now = self._loop.time()
        since = self.waiting_since
        due = (now if since is None else since) + self.timeout
        if since is not None and now >= due and self._task is not None:
            self.fired = True
            self._task.cancel()
            return
        self._handle = self._loop.call_at(due, self._check)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def caused_cancellation(self) -> bool:
        """True when this watchdog's cancel is the *only* one pending on the task.

        A cancel from outside (the caller gave up on the run) that arrives together with a
        fired watchdog must stay a cancellation, never turn into a retryable timeout.
        """
        return self.fired and self._task is not None and self._task.cancelling() == 1

    def timed_out(self, chunks: int, model_name: str | None) -> Exception:
        """After the cancellation this watchdog caused: undo it, return the timeout error."""
        if self._task is not None:
            self._task.uncancel()
        logger.warning(
            "langchain_openai.stream_chunk_timeout fired",
            extra={
                "source": "stream_chunk_timeout",
                "timeout_s": self.timeout,
                "model_name": model_name,
                "chunks_received": chunks,
            },
        )
        error: Exception = lco.StreamChunkTimeoutError(
            self.timeout, model_name=model_name, chunks_received=chunks
        )
        return error
