"""A reply that arrives as one burst (the server writes 3,000 chunks at once) is streamed as it
is consumed: the first token reaches a LangGraph consumer (another task) at once, and the
buffered events are parsed only as the consumer reaches them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from langchain_core.callbacks import BaseCallbackHandler

from streamagent import AgentConfig, ModelConfig, astream_chunks, build_agent
from streamagent.llm.lean import reader as lean_reader
from streamagent.llm.lean.chat_model import LeanChatOpenAI
from streamagent.llm.lean.transport import READ_BUFFER_BYTES, SHARED_SESSIONS
from tests._support.servers import start_standalone


class _TokenCounter(BaseCallbackHandler):
    """Counts tokens inline (an async or thread-pool handler would itself yield to the loop)."""

    run_inline = True

    def __init__(self) -> None:
        self.tokens = 0

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.tokens += 1


@pytest.fixture
def bulk_server() -> Iterator[str]:
    """A scripted server in *another process* answering 3,000-token replies at full speed, so
    a whole burst of chunks is already in the client's socket buffer when it starts reading."""
    proc, base_url = start_standalone("--reply-tokens", "3000")
    yield base_url
    proc.terminate()
    proc.wait(timeout=10)


async def test_first_token_reaches_a_langgraph_consumer_before_the_burst_is_processed(
    bulk_server: str,
) -> None:
    config = AgentConfig(model=ModelConfig(base_url=bulk_server, api_key="sk-test"))
    agent = build_agent(config=config, checkpointer=False)
    for _ in range(3):
        counter = _TokenCounter()
        seen_at = None
        async for chunk in astream_chunks(
            agent, "go", thread_id="t", config={"callbacks": [counter]}
        ):
            if chunk.type == "content" and seen_at is None:
                seen_at = counter.tokens
        assert counter.tokens >= 3_000
        assert seen_at is not None and seen_at <= 10, (
            f"the consumer saw the first token after the model had streamed {seen_at}"
        )


async def test_a_backlog_is_parsed_as_it_is_consumed_and_buffered_within_the_limit(
    bulk_server: str, monkeypatch
) -> None:
    """A consumer that falls behind a burst: the buffered events stay bytes until they are
    used (a backlog of parsed dicts per stream was most of an overloaded process's memory),
    and aiohttp buffers at most its read limit per connection."""
    decoded = 0
    real_loads = orjson.loads

    def counting_loads(payload: bytes) -> Any:
        nonlocal decoded
        decoded += 1
        return real_loads(payload)

    monkeypatch.setattr(orjson, "loads", counting_loads)  # SseDecoder.feed's
    monkeypatch.setattr(lean_reader, "decode_payload", counting_loads)
    llm = LeanChatOpenAI(model="gpt-4o", base_url=bulk_server, api_key="sk-t", max_retries=0)
    seen = ahead = 0
    async for _chunk in llm.astream("go"):
        seen += 1
        if seen == 1:
            await asyncio.sleep(0.3)  # the whole burst arrives meanwhile
        ahead = max(ahead, decoded - seen)
    assert seen >= 3_000
    assert ahead <= 2, f"{ahead} events were parsed before the consumer reached them"
    session = SHARED_SESSIONS.current()
    assert session is not None and session._read_bufsize == READ_BUFFER_BYTES
