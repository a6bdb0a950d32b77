"""LangGraph's checkpointer conformance suite (``langgraph-checkpoint-conformance``): all 81
specs, none skipped, on the sync saver (whose async methods run the sync ones in a worker
thread), the async saver, and both wrapped in ``InstrumentedSaver``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import DetectedCapabilities

from streamagent.memory import AsyncRedisSaver, RedisSaver
from streamagent.observability.metrics import AgentMetrics
from streamagent.observability.saver_timing import InstrumentedSaver
from tests import redis_fixtures

SPECS = 81


def _factory(kind: str, instrumented: bool) -> Any:
    async def factory() -> AsyncIterator[Any]:
        url = redis_fixtures.test_redis_url()
        prefix = f"saconf-{uuid.uuid4().hex[:10]}"
        cleanup = redis.Redis.from_url(url)
        saver: Any
        if kind == "sync":
            client = redis.Redis.from_url(url)
            saver = RedisSaver(client, key_prefix=prefix)
            saver.setup()
        else:
            aclient = aioredis.Redis.from_url(url)
            saver = AsyncRedisSaver(aclient, key_prefix=prefix)
            await saver.asetup()
        try:
            yield InstrumentedSaver(saver, AgentMetrics()) if instrumented else saver
        finally:
            redis_fixtures.delete_prefix(cleanup, prefix)
            cleanup.close()
            if kind == "sync":
                client.close()
            else:
                await aclient.aclose()

    return factory


@pytest.mark.parametrize("instrumented", [False, True], ids=["plain", "instrumented"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_conformance_suite_passes_every_spec(kind: str, instrumented: bool) -> None:
    registered = checkpointer_test(name=f"streamagent-{kind}-{instrumented}")(
        _factory(kind, instrumented)
    )
    report = await validate(registered)
    passed = sum(r.tests_passed for r in report.results.values())
    failed = sum(r.tests_failed for r in report.results.values())
    skipped = sum(r.tests_skipped for r in report.results.values())
    failures = [f for r in report.results.values() for f in r.failures]
    assert (passed, failed, skipped) == (SPECS, 0, 0), failures


def test_instrumented_saver_exposes_exactly_the_wrapped_capabilities() -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from streamagent.memory.turns import turn_saver

    for inner in (InMemorySaver(), RedisSaver(redis.Redis())):
        wrapped = InstrumentedSaver(inner, AgentMetrics())
        assert DetectedCapabilities.from_instance(wrapped) == DetectedCapabilities.from_instance(
            inner
        )
        # the turn lock finds the Redis saver inside the wrapper (and nothing in InMemorySaver)
        expected = inner if isinstance(inner, RedisSaver) else None
        assert turn_saver(wrapped) is expected
