"""One turn at a time per thread, decided in Redis: a lock with expiry and a fencing token.

A turn (one ``astream_chunks`` call, one CLI prompt) first takes its thread's lock: the
``turn`` key of the thread (same hash slot as its data), set with a lease
(:data:`LEASE_SECONDS`) that a heartbeat renews while the turn runs, holding the turn's
*token*: the thread's fencing counter (in its tombstone key, which outlives its data),
incremented by every acquisition. Every write of the turn carries the token
(``configurable["__streamagent_fence"]``, see :data:`~streamagent.memory.base.FENCE_KEY`)
and the saver's scripts refuse it unless it is still the thread's current token
(:class:`~streamagent.errors.TurnFencedError`): a holder that stalled past its lease (GC
pause, frozen VM, lost network) cannot write over the turn that took the thread after it.
A holder that dies releases the thread when its lease runs out.

Multitask strategies (LangGraph Server's names), chosen per call:

* ``"reject"`` (default): a turn on a busy thread ends at once with a retryable
  :class:`~streamagent.errors.ThreadBusyError`, before anything of it is stored.
* ``"enqueue"``: wait for the thread, up to ``wait_seconds`` (default
  :data:`ENQUEUE_WAIT_SECONDS`), polling with backoff; then ``ThreadBusyError``. Waiters are
  not served in strict arrival order.

Only graphs whose checkpointer is a streamagent Redis saver (also inside
``InstrumentedSaver``) are locked: other checkpointers have no shared place to decide in.

Example:
    >>> check_strategy(None), check_strategy("enqueue")
    ('reject', 'enqueue')
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from streamagent.errors import ConfigurationError, ThreadBusyError
from streamagent.memory.base import FENCE_KEY, BaseRedisSaver

__all__ = [
    "ENQUEUE_WAIT_SECONDS",
    "LEASE_SECONDS",
    "MULTITASK_STRATEGIES",
    "Turn",
    "begin_turn",
    "check_strategy",
    "turn_saver",
]

logger = logging.getLogger(__name__)

MULTITASK_STRATEGIES = ("reject", "enqueue")
#: how long a turn holds its thread without a heartbeat (a dead holder's thread is free then)
LEASE_SECONDS = 30.0
#: how long ``"enqueue"`` waits for a busy thread by default
ENQUEUE_WAIT_SECONDS = 60.0


def check_strategy(strategy: str | None) -> str:
    """The strategy to use (``None`` -> ``"reject"``); raises for an unknown one."""
    chosen = strategy or "reject"
    if chosen not in MULTITASK_STRATEGIES:
        raise ConfigurationError(
            f"multitask strategy must be one of {MULTITASK_STRATEGIES}, got {strategy!r}"
        )
    return chosen


def turn_saver(checkpointer: Any) -> BaseRedisSaver[Any] | None:
    """The streamagent Redis saver behind a graph's checkpointer (unwrapping
    ``InstrumentedSaver``), or None: only those hold turn locks."""
    for _ in range(4):
        if isinstance(checkpointer, BaseRedisSaver):
            return checkpointer
        # InstrumentedSaver keeps the wrapped saver in its own __dict__ (no __getattr__ use)
        inner = getattr(checkpointer, "__dict__", {}).get("saver")
        if inner is None:
            return None
        checkpointer = inner
    return None


@dataclass
class Turn:
    """A held thread: its token, and the heartbeat that renews the lease."""

    saver: BaseRedisSaver[Any]
    thread_id: str
    token: str
    lease_seconds: float
    _heartbeat: asyncio.Task[None] | None = field(default=None, repr=False)
    lost: bool = False

    def config(self, config: RunnableConfig) -> RunnableConfig:
        """``config`` with the turn's fencing token (every write of the run carries it)."""
        configurable = dict(config.get("configurable") or {})
        configurable[FENCE_KEY] = self.token
        return cast("RunnableConfig", {**config, "configurable": configurable})

    def start(self) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._renew())

    async def _renew(self) -> None:
        lease_ms = int(self.lease_seconds * 1000)
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                held = await self.saver._adrive(
                    self.saver._release_turn_op(self.thread_id, self.token, lease_ms=lease_ms)
                )
            except Exception:  # noqa: BLE001 - a missed renewal is retried; fencing protects
                logger.warning("could not renew the turn lock of %s", self.thread_id)
                continue
            if not held:
                self.lost = True
                logger.warning(
                    "turn lock of thread %s expired; its late writes will be refused",
                    self.thread_id,
                )
                return

    async def release(self) -> None:
        """Stop the heartbeat and free the thread (only if this turn still holds it). A
        cancel that arrives meanwhile is raised after the thread is free, so a cancelled
        turn never leaves its thread locked until the lease runs out."""
        await _finish(self._release())

    async def _release(self) -> None:
        heartbeat, self._heartbeat = self._heartbeat, None
        if heartbeat is not None:
            heartbeat.cancel()
            await asyncio.wait((heartbeat,))
        try:
            await self.saver._adrive(self.saver._release_turn_op(self.thread_id, self.token))
        except Exception:  # noqa: BLE001 - the lease frees the thread anyway
            logger.warning("could not release the turn lock of %s", self.thread_id)


async def _finish(awaitable: Any) -> Any:
    """Await ``awaitable`` to its end even when the caller is cancelled meanwhile (the
    cancel is raised afterwards)."""
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait((task,))
        raise


async def _acquire(
    saver: BaseRedisSaver[Any], thread_id: str, *, lease_ms: int, marker_ms: int
) -> tuple[str, int]:
    """One acquisition attempt; a cancel meanwhile frees a thread it took, then is raised."""
    attempt = saver._acquire_turn_op(thread_id, lease_ms=lease_ms, marker_ms=marker_ms)
    task = asyncio.ensure_future(saver._adrive(attempt))
    try:
        token, busy_ms = await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait((task,))
        if not task.cancelled() and task.exception() is None:
            token, busy_ms = task.result()
            if not busy_ms:
                await _finish(saver._adrive(saver._release_turn_op(thread_id, token)))
        raise
    return token, busy_ms


async def begin_turn(
    checkpointer: Any,
    config: RunnableConfig,
    strategy: str | None = None,
    *,
    wait_seconds: float | None = None,
    lease_seconds: float = LEASE_SECONDS,
) -> Turn | None:
    """Take the thread of ``config`` for one turn (``None`` when the checkpointer holds no
    turn locks). Raises :class:`ThreadBusyError` when the thread stays busy."""
    chosen = check_strategy(strategy)
    saver = turn_saver(checkpointer)
    configurable: Mapping[str, Any] = config.get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if saver is None or thread_id is None:
        return None
    thread_id = str(thread_id)
    new_marker_s = (saver.ttl_seconds or 0) and saver.ttl_seconds + saver.expiry_notice_seconds
    lease_ms, marker_ms = int(lease_seconds * 1000), int(new_marker_s * 1000)
    wait = ENQUEUE_WAIT_SECONDS if wait_seconds is None else wait_seconds
    deadline = time.monotonic() + (wait if chosen == "enqueue" else 0.0)
    delay = 0.02
    while True:
        token, busy_ms = await _acquire(saver, thread_id, lease_ms=lease_ms, marker_ms=marker_ms)
        if not busy_ms:
            turn = Turn(saver, thread_id, token, lease_seconds)
            turn.start()
            return turn
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ThreadBusyError(thread_id, retry_after_seconds=max(busy_ms, 0) / 1000 or None)
        await asyncio.sleep(min(remaining, delay * (1 + random.random())))
        delay = min(delay * 2, 0.5)
