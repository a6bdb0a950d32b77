"""Scrape ``/metrics`` over HTTP after a scripted conversation with a tool call and a retry."""

from __future__ import annotations

import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from prometheus_client.parser import text_string_to_metric_families

from streamagent import RetryConfig, build_agent
from streamagent.accounting import calculate_cost
from streamagent.accounting.cost import Usage
from streamagent.errors import RateLimitedError
from streamagent.observability.metrics import AgentMetrics, start_metrics_server
from streamagent.observability.saver_timing import InstrumentedSaver
from streamagent.testing import Fault, Reply, ToolCall
from tests._support.streams import collect
from tests.conftest import config_for

THREAD_ID = "thread-7f3a9c-user-alice"


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        body = response.read().decode()
    assert THREAD_ID not in body
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(values: dict[Any, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in values, f"{name}{labels} missing"
    return values[key]


@pytest.fixture
def metrics_server():
    metrics = AgentMetrics()
    server, _thread = start_metrics_server(0, metrics=metrics)
    yield metrics, server.server_port
    server.shutdown()
    server.server_close()


async def test_scraped_metrics_match_a_scripted_conversation(make_server, metrics_server):
    metrics, port = metrics_server
    server = make_server(
        [
            Fault.http(429, retry_after_ms=20),
            Reply(
                tool_calls=[ToolCall("multiply", {"a": 6, "b": 7}, id="m1")],
                prompt_tokens=1200,
                cached_tokens=1024,
                completion_tokens=18,
            ),
            Reply(
                "The product is 42.", prompt_tokens=1300, cached_tokens=1024, completion_tokens=7
            ),
        ]
    )
    cfg = config_for(
        server, retry=RetryConfig(max_retries=2, initial_delay_seconds=0.01, jitter=False)
    )
    agent = build_agent(
        tools=[multiply],
        config=cfg,
        checkpointer=InstrumentedSaver(InMemorySaver(), metrics),
        observer=metrics,
    )
    chunks = await collect(agent, "6 times 7?", thread_id=THREAD_ID)
    assert chunks[-1].type == "done"

    values = scrape(port)
    chat = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o"}
    # tokens: exactly the scripted usage, one observation per successful call
    for token_type, total in (("input", 2500), ("cached", 2048), ("output", 25)):
        labels = {**chat, "gen_ai_token_type": token_type}
        assert get(values, "gen_ai_client_token_usage_sum", **labels) == total
        assert get(values, "gen_ai_client_token_usage_count", **labels) == 2
    # cost: the exact Decimal of both calls (gpt-4o $2.50 / $1.25 cached / $10 per 1M)
    expected = calculate_cost(
        Usage(input_tokens=1200, cached_input_tokens=1024, output_tokens=18), model="gpt-4o"
    ) + calculate_cost(
        Usage(input_tokens=1300, cached_input_tokens=1024, output_tokens=7), model="gpt-4o"
    )
    assert expected == Decimal(
        "0.00394"
    )  # (176*2.5 + 1024*1.25 + 18*10 + 276*2.5 + 1024*1.25 + 7*10) / 1M
    assert get(values, "streamagent_llm_cost_usd_total", model="gpt-4o") == float(expected)
    assert chunks[-1].cost_usd == expected
    # tool call, retry, no error
    assert get(values, "streamagent_tool_calls_total", tool="multiply", status="success") == 1
    assert get(values, "streamagent_tool_duration_seconds_count", tool="multiply") == 1
    assert get(values, "streamagent_retries_total", reason="RateLimitedError") == 1
    assert not any(name == "streamagent_errors_total" for name, _ in values)
    # durations and streaming timings were observed for both calls
    assert get(values, "gen_ai_client_operation_duration_seconds_count", error_type="", **chat) == 2
    assert get(values, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **chat) == 2
    # the checkpointer was timed, and process metrics are there
    assert (
        get(values, "streamagent_checkpoint_operation_duration_seconds_count", operation="put") >= 3
    )
    assert get(values, "process_resident_memory_bytes") > 0
    # no label value anywhere carries the thread id
    assert all(THREAD_ID not in v for _, labels in values for _, v in labels)


async def test_surfaced_errors_are_counted_by_type(make_server, metrics_server):
    metrics, port = metrics_server
    server = make_server([Fault.http(401), Fault.http(503), Fault.http(503)])
    cfg = config_for(
        server, retry=RetryConfig(max_retries=1, initial_delay_seconds=0.01, jitter=False)
    )
    agent = build_agent(config=cfg, checkpointer=InMemorySaver(), observer=metrics)
    first = await collect(agent, "a", thread_id=THREAD_ID)
    second = await collect(agent, "b", thread_id=THREAD_ID)
    assert first[-1].error["type"] == "AuthenticationError"
    assert second[-1].error["type"] == "ModelUnavailableError"
    values = scrape(port)
    assert get(values, "streamagent_errors_total", type="AuthenticationError") == 1
    assert get(values, "streamagent_errors_total", type="ModelUnavailableError") == 1
    assert get(values, "streamagent_retries_total", reason="ModelUnavailableError") == 1


async def test_budget_refusals_are_counted_as_errors(make_server, metrics_server):
    # ModelNode.check_budgets raises before the try/except that reports to the observer,
    # so budget refusals must still reach on_error (see the report for the fix)
    metrics, port = metrics_server
    server = make_server([Reply("first", prompt_tokens=990, completion_tokens=20)])
    agent = build_agent(
        config=config_for(server, max_total_tokens=1000),
        checkpointer=InMemorySaver(),
        observer=metrics,
    )
    first = await collect(agent, "one", thread_id=THREAD_ID)
    assert first[-1].type == "done"
    refused = await collect(agent, "two", thread_id=THREAD_ID)
    assert refused[-1].error["type"] == "BudgetExceededError"
    values = scrape(port)
    assert get(values, "streamagent_errors_total", type="BudgetExceededError") >= 1


def test_metrics_server_serves_the_registry_on_loopback():
    m = AgentMetrics()
    m.on_retry(model="gpt-4o", error=RateLimitedError("x"))
    server, thread = start_metrics_server(0, metrics=m)
    try:
        assert server.server_address[0] == "127.0.0.1" and thread.daemon
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert 'streamagent_retries_total{reason="RateLimitedError"} 1.0' in body
