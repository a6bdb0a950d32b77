"""The read timeout counts how long the *server* is silent, not how long the consumer takes:
a slow consumer of bytes already received is not a timeout, a stalled server is. The body
reader that implements it takes aiohttp's per-packet timer over and times only a waiting read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from streamagent import RetryConfig, astream_chunks, build_agent
from streamagent.testing import Fault, Reply, ScriptedOpenAIServer
from tests._support.streams import collect, text
from tests.conftest import config_for

STORY = "Once upon a time there was a stream that arrived one token at a time."


async def test_a_slow_consumer_is_not_a_read_timeout_but_a_stalled_server_is(
    make_server: Callable[..., ScriptedOpenAIServer],
) -> None:
    fast = make_server([STORY])
    agent = build_agent(config=config_for(fast, timeout_seconds=0.2), checkpointer=False)
    got: list[str] = []
    async for chunk in astream_chunks(agent, "hi"):
        if chunk.type == "content":
            got.append(chunk.content or "")
            if len(got) <= 2:
                await asyncio.sleep(0.5)  # longer than the read timeout, bytes already here
        assert chunk.type != "error", chunk.error
    assert "".join(got) == STORY

    stalled = make_server([Reply(STORY, fault=Fault.stall(5.0, after_chunks=3))])
    agent = build_agent(
        config=config_for(stalled, timeout_seconds=0.2, retry=RetryConfig(max_retries=0)),
        checkpointer=False,
    )
    chunks = await collect(agent, "hi", thread_id=None)
    # without the read timeout the stream would resume after the stall and end with "done"
    assert chunks[-1].type == "error", chunks[-1]
    assert chunks[-1].error is not None and chunks[-1].error["type"] == "ModelUnavailableError"
    assert "timed out" in chunks[-1].error["message"], chunks[-1].error
    partial = text(chunks)
    assert partial and STORY.startswith(partial) and partial != STORY, "it ended at the stall"


# ------------------------------------------------------------- the body's lazy read timeout
class _Protocol:
    """What BodyReader needs of aiohttp's ResponseHandler (and StreamReader of its protocol)."""

    def __init__(self) -> None:
        self.read_timeout: float | None = 30.0
        self.connected = True
        self._reading_paused = False

    def pause_reading(self, **_: Any) -> None:
        self._reading_paused = True

    def resume_reading(self, **_: Any) -> None:
        self._reading_paused = False


class _Connection:
    def __init__(self) -> None:
        self.protocol = _Protocol()


def _reader(timeout: float) -> tuple[Any, Any, _Connection]:
    import aiohttp

    from streamagent.llm.lean.transport import BodyReader

    connection = _Connection()
    loop = asyncio.get_running_loop()
    content = aiohttp.StreamReader(connection.protocol, 2**16, loop=loop)  # type: ignore[arg-type]
    body = BodyReader(content, read_timeout_seconds=timeout, connection=connection)
    return content, body, connection


async def test_body_reader_takes_the_read_timeout_over_and_times_a_waiting_read() -> None:
    import aiohttp

    content, body, connection = _reader(0.05)
    assert connection.protocol.read_timeout is None, "aiohttp's per-packet timer is off"
    content.feed_data(b"data: 1\n\n")
    assert await body.read() == b"data: 1\n\n"
    await asyncio.sleep(0.15)  # the consumer away for 3 timeouts: not a read timeout
    content.feed_data(b"data: 2\n\n")
    assert await body.read() == b"data: 2\n\n"
    started = asyncio.get_running_loop().time()
    with pytest.raises(aiohttp.ServerTimeoutError):
        async with asyncio.timeout(30):  # a hang guard: without the timer the read never ends
            await body.read()  # nothing comes
    assert asyncio.get_running_loop().time() - started >= 0.045, "it waited its timeout first"
    body.close()


async def test_bytes_arriving_as_the_timer_fires_are_not_a_timeout() -> None:
    content, body, _ = _reader(10.0)
    loop = asyncio.get_running_loop()
    reading = asyncio.create_task(body.read())
    await asyncio.sleep(0)  # the read is waiting
    # a loop turn in which the bytes arrive (I/O callbacks run first) and the timer is due,
    # before the reading task could run: the read has "waited" past its deadline
    body._waiting_since = loop.time() - 11.0
    content.feed_data(b"late but here")
    body._check()
    assert await reading == b"late but here"
    content.feed_data(b"next")
    assert await body.read() == b"next", "no error was left behind for the next read"
    content.feed_eof()
    assert await body.read() == b""
    body.close()


async def test_without_a_timeout_aiohttp_keeps_timing_the_body() -> None:
    content, body, connection = _reader(0.0)
    assert connection.protocol.read_timeout == 30.0
    content.feed_data(b"x")
    assert await body.read() == b"x"
    body.close()
