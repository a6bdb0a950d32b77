"""The streamagent model client's HTTP connections: one pool per event loop, shared by models,
closed with its loop, reused across calls, never a queue for concurrent streams; the SDK's
timeouts carry over to it."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import httpx2

from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.lean.transport import client_timeout
from streamagent.testing import Fault, Reply
from tests._support.agents import chat_model

STORY = "Once upon a time, a small agent streamed 42 tokens — and nobody lost one."


def test_aiohttp_sessions_close_with_their_loop(make_server, caplog) -> None:
    server = make_server(["one", "two"])
    llm = LeanChatOpenAI(model="gpt-4o", base_url=server.base_url, api_key="sk-t", max_retries=0)
    sessions = []
    for _ in range(2):

        async def run() -> str:
            text = "".join([str(c.content) async for c in llm.astream("hi")])
            assert len(llm._lean_async_clients) == 1
            sessions.append(llm._lean_async_clients.current())
            return text

        with caplog.at_level(logging.DEBUG, logger="asyncio"):
            assert asyncio.run(run()) in ("one", "two")
        assert len(llm._lean_async_clients) == 0, "forgotten when its loop shut down"
    assert all(s is not None and s.closed for s in sessions)
    assert sessions[0] is not sessions[1], "one session per event loop"
    sessions.clear()
    gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def test_sdk_timeouts_map_to_aiohttp() -> None:
    timeout = client_timeout(httpx2.Timeout(30.0, connect=5.0, pool=2.0))
    assert (timeout.total, timeout.connect, timeout.sock_connect, timeout.sock_read) == (
        None,
        7.0,
        5.0,
        30.0,
    )
    no_limits = client_timeout(httpx2.Timeout(None))
    assert (no_limits.connect, no_limits.sock_read) == (None, None)


async def test_dropping_a_model_leaves_the_shared_session_open_and_quiet(
    make_server, caplog
) -> None:
    server = make_server(["one", "two"])

    async def ask() -> tuple[str, Any]:
        llm = LeanChatOpenAI(
            model="gpt-4o", base_url=server.base_url, api_key="sk-t", max_retries=0
        )
        text = "".join([str(c.content) async for c in llm.astream("hi")])
        return text, llm._lean_async_clients.current()

    with caplog.at_level(logging.DEBUG, logger="asyncio"):
        first, session = await ask()
        gc.collect()  # the first model is gone; its session must not be collected with it
        second, again = await ask()
        gc.collect()
    assert (first, second) == ("one", "two")
    assert again is session and not session.closed, "one pool per loop, shared by models"
    assert len({r.peer for r in server.requests}) == 1, "the connection was reused"
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


async def test_connection_is_reused_across_calls(make_server):
    server = make_server([STORY] * 3)
    llm = chat_model(server, cls=LeanChatOpenAI)
    for _ in range(3):
        assert "".join([str(c.content) async for c in llm.astream("hi")]) == STORY
    assert len(server.requests) == 3
    assert len({r.peer for r in server.requests}) == 1, "the body is read to its end after [DONE]"


async def test_more_than_100_concurrent_streams_are_not_queued_behind_the_pool(make_server):
    """httpx's default pool (100 connections) would hold stream 101+ back until others end."""
    streams = 120
    # every stream stalls after its first chunk for longer than the test may run: a request
    # queued behind the pool would never reach the server
    server = make_server([Reply(STORY, fault=Fault.stall(600.0, after_chunks=1))] * streams)
    llm = chat_model(server, cls=LeanChatOpenAI, timeout=600.0)

    async def consume() -> None:
        async for _ in llm.astream("hi"):
            pass

    tasks = [asyncio.create_task(consume()) for _ in range(streams)]
    try:
        for _ in range(1800):  # until every request reached the server (a hang guard: 90 s)
            if len(server.requests) == streams:
                break
            await asyncio.sleep(0.05)
        assert len(server.requests) == streams, f"only {len(server.requests)} reached the server"
        assert not any(t.done() for t in tasks), "all streams are open at the same time"
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
