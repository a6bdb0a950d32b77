"""Cancelling a run ends it, promptly, and loses nothing.

LangGraph's ``astream`` (1.2) ends by cancelling its stream-waiter task and awaiting it under
``suppress(CancelledError)``; a ``task.cancel()`` that lands in that window is consumed and the
run returns normally — a caller iterating ``graph.astream`` itself carries on as if it had never
been cancelled (a session loop then starts its next turn, forever). ``astream_chunks`` runs the
graph in a task of its own and waits on its own queue, so the caller's cancel always arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import astream_chunks, build_agent
from streamagent.llm.lean.watchdog import ChunkWatchdog as _ChunkWatchdog
from streamagent.memory import AsyncRedisSaver
from streamagent.testing import Reply, ScriptedOpenAIServer
from streamagent.testing.__main__ import FillerResponder
from tests import redis_fixtures
from tests._support.agents import lookup
from tests._support.streams import collect, stop_at_the_first_token
from tests.conftest import config_for


def _swallow_at_the_end(graph: Any, at_the_end: Callable[[], object]) -> None:
    """Make ``graph.astream`` end as LangGraph's does when a cancel lands during its cleanup:
    ``at_the_end()`` requests the cancel while a task is awaited, the cancel is forwarded to
    that task, and ``suppress`` eats it."""
    original = graph.astream

    async def astream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for item in original(*args, **kwargs):
            yield item
        waiter = asyncio.create_task(asyncio.sleep(3600))
        at_the_end()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter

    graph.astream = astream


def _agent(make_server: Callable[..., ScriptedOpenAIServer]) -> Any:
    """An agent (in-memory memory) on a server answering every call with 3 tokens."""
    server = make_server(responder=FillerResponder(3))
    return build_agent(config=config_for(server), checkpointer=InMemorySaver())


async def test_a_cancel_the_graph_swallows_on_its_way_out_still_ends_the_run(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    agent = _agent(make_server)
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in astream_chunks(agent, "hi", thread_id="t"):
            seen.append(chunk.type)

    task = asyncio.create_task(consume())
    _swallow_at_the_end(agent, task.cancel)
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "content" in seen, "the run itself went through"
    assert "done" not in seen, "a cancelled run must not report success"


async def test_a_timeout_that_fires_as_the_graph_ends_is_not_lost(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    agent = _agent(make_server)
    seen: list[str] = []

    async def timed() -> None:
        async with asyncio.timeout(None) as deadline:
            _swallow_at_the_end(
                agent, lambda: deadline.reschedule(asyncio.get_running_loop().time())
            )
            async for chunk in astream_chunks(agent, "hi", thread_id="t"):
                seen.append(chunk.type)

    with pytest.raises(TimeoutError):
        await timed()
    assert "content" in seen
    assert "done" not in seen


async def test_a_cancel_handled_inside_the_run_does_not_end_it(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    """A cancel that the run requests and handles itself (``asyncio.timeout`` inside the graph
    takes its cancel back with ``uncancel``) stays inside the run: the caller gets ``done``."""
    agent = _agent(make_server)
    original = agent.astream

    async def astream(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0):
                await asyncio.sleep(1)
        async for item in original(*args, **kwargs):
            yield item

    agent.astream = astream  # type: ignore[method-assign]
    types = [c.type async for c in astream_chunks(agent, "hi", thread_id="t")]
    assert types[-1] == "done"


@pytest.mark.slow
async def test_cancelling_many_busy_sessions_mid_turn_ends_them_all_and_loses_nothing(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    """A load check of the whole path (Redis memory, a bounded pool, tool turns): the
    swallow itself is timing-dependent here, the two tests above pin it exactly."""
    import redis
    import redis.asyncio as aioredis

    redis_url = redis_fixtures.test_redis_url()
    key_prefix = f"satest-cancel-{uuid.uuid4().hex[:8]}"

    sessions, rounds = 40, 4
    server = make_server(
        responder=FillerResponder(30, tool_then_text=True, tool_name="lookup"),
        token_delay_seconds=0.002,
    )
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url, max_connections=16, timeout=30, socket_timeout=30
    )
    client = aioredis.Redis(connection_pool=pool)
    saver = AsyncRedisSaver(client, key_prefix=key_prefix)
    await saver.asetup()
    agent = build_agent(tools=[lookup], config=config_for(server), checkpointer=saver)
    rng = random.Random(11)
    finished_after_cancel: list[str] = []
    try:
        for r in range(rounds):
            cancel_sent: dict[int, bool] = {}

            async def session(
                i: int, r: int = r, cancel_sent: dict[int, bool] = cancel_sent
            ) -> None:
                for turn in range(1_000):
                    async for _ in astream_chunks(
                        agent, f"round {r} turn {turn}", thread_id=f"s{i}"
                    ):
                        pass
                    if cancel_sent.get(i):
                        finished_after_cancel.append(f"round {r} session {i}")
                        return

            tasks = [asyncio.create_task(session(i)) for i in range(sessions)]
            await asyncio.sleep(rng.uniform(0.3, 1.2))
            for i, task in enumerate(tasks):
                cancel_sent[i] = task.cancel()
            done, pending = await asyncio.wait(tasks, timeout=15)
            assert not pending, f"round {r}: {len(pending)} of {sessions} runs ignored the cancel"
            assert not finished_after_cancel, (
                f"turns went on after the cancel: {finished_after_cancel}"
            )
            assert all(t.cancelled() for t in done), f"round {r}: a run ended otherwise"

        # every thread goes on: the next turn answers, after the interrupted ones
        async def last_turn(i: int) -> list[str]:
            return [c.type async for c in astream_chunks(agent, "and now?", thread_id=f"s{i}")]

        results = await asyncio.gather(*(last_turn(i) for i in range(sessions)))
        assert all(types[-1] == "done" and "tool_result" in types for types in results)
        state = await agent.aget_state({"configurable": {"thread_id": "s0"}})
        assert state.values["messages"][-1].content, "the thread ends with the new answer"
    finally:
        await client.aclose()
        await pool.aclose()
        cleanup = redis.Redis.from_url(redis_url)
        try:
            redis_fixtures.delete_prefix(cleanup, key_prefix)
        finally:
            cleanup.close()


async def test_cancel_from_outside_stays_a_cancellation_even_when_the_chunk_timer_fired():
    seen: dict[str, bool] = {}
    watchdogs: list[_ChunkWatchdog] = []
    started = asyncio.Event()

    async def stream(name: str) -> None:
        watchdog = _ChunkWatchdog(0.01)
        watchdogs.append(watchdog)
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen[name] = watchdog.caused_cancellation()
            raise
        finally:
            watchdog.close()

    for external in (False, True):
        started.clear()
        task = asyncio.create_task(stream(f"external={external}"))
        await started.wait()
        time.sleep(0.02)  # the stream waited longer than its 10 ms chunk timeout
        watchdogs[-1]._check()  # the timer fires: it cancels the task
        assert watchdogs[-1].fired
        if external:
            task.cancel()  # and, before the task runs again, the caller gives up too
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen == {"external=False": True, "external=True": False}


async def test_a_reader_that_stops_early_cancels_the_run_and_waits_for_it(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    server = make_server(
        [Reply("Once upon a time, a reader left early.", token_delay_seconds=0.05), "Second turn."]
    )
    saver = InMemorySaver()
    agent = build_agent(config=config_for(server), checkpointer=saver)
    left = await stop_at_the_first_token(agent, "hi", thread_id="t")
    assert not left, f"tasks still running after the reader stopped: {left}"
    assert (await collect(agent, "again", thread_id="t"))[-1].type == "done"
    state = await agent.aget_state({"configurable": {"thread_id": "t"}})
    assert state.values["messages"][-1].content == "Second turn."
