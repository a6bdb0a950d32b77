"""AgentMetrics: names, labels, values, isolation, and the instrumented checkpoint saver."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from streamagent.accounting.cost import Usage
from streamagent.errors import ModelUnavailableError, RateLimitedError, StreamBrokenError
from streamagent.observability.metrics import AgentMetrics, metrics_asgi_app
from streamagent.observability.observer import AgentObserver
from streamagent.observability.saver_timing import InstrumentedSaver


def samples(metrics: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    text = metrics.exposition().decode()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: AgentMetrics, name: str, **labels: str) -> float:
    return samples(metrics).get((name, tuple(sorted(labels.items()))), 0.0)


def model_call(metrics: AgentMetrics, **overrides: Any) -> None:
    kwargs: dict[str, Any] = {
        "model": "gpt-4o",
        "usage": Usage(input_tokens=1000, cached_input_tokens=200, output_tokens=50, requests=1),
        "cost_usd": Decimal("0.00275"),
        "latency_seconds": 1.2,
        "time_to_first_token_seconds": 0.2,
        "output_chunks": 11,
    }
    kwargs.update(overrides)
    metrics.on_model_call(**kwargs)


def test_agent_metrics_implements_the_observer_protocol():
    assert isinstance(AgentMetrics(), AgentObserver)


def test_each_instance_has_its_own_registry_and_never_touches_the_global_one():
    before = set(REGISTRY._names_to_collectors)
    a, b = AgentMetrics(), AgentMetrics()
    model_call(a)
    assert a.registry is not b.registry
    assert (
        value(
            a,
            "gen_ai_client_token_usage_count",
            gen_ai_operation_name="chat",
            gen_ai_request_model="gpt-4o",
            gen_ai_token_type="input",
        )
        == 1
    )
    assert (
        value(
            b,
            "gen_ai_client_token_usage_count",
            gen_ai_operation_name="chat",
            gen_ai_request_model="gpt-4o",
            gen_ai_token_type="input",
        )
        == 0
    )
    assert set(REGISTRY._names_to_collectors) == before


def test_process_collector_reports_memory_and_cpu():
    s = samples(AgentMetrics())
    names = {name for name, _ in s}
    assert "process_resident_memory_bytes" in names
    assert "process_cpu_seconds_total" in names
    assert s[("process_resident_memory_bytes", ())] > 1_000_000


def test_process_collector_is_not_registered_twice_on_a_shared_registry():
    registry = CollectorRegistry()
    AgentMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        AgentMetrics(registry)  # the agent metrics themselves clash: one AgentMetrics per registry
    other = CollectorRegistry()
    from prometheus_client import ProcessCollector

    ProcessCollector(registry=other)
    metrics = AgentMetrics(other)  # an existing process collector is tolerated
    assert "process_resident_memory_bytes" in {n for n, _ in samples(metrics)}


def test_model_call_records_genai_semconv_histograms():
    m = AgentMetrics()
    model_call(m)
    chat = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o"}
    for token_type, count in (("input", 1000), ("cached", 200), ("output", 50)):
        assert (
            value(m, "gen_ai_client_token_usage_sum", gen_ai_token_type=token_type, **chat) == count
        )
    assert value(m, "gen_ai_client_operation_duration_seconds_sum", error_type="", **chat) == 1.2
    assert value(m, "gen_ai_client_operation_duration_seconds_count", error_type="", **chat) == 1
    assert value(m, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **chat) == 0.2
    # (1.2 - 0.2) / (11 - 1) chunks after the first
    per_chunk = value(m, "gen_ai_client_operation_time_per_output_chunk_seconds_sum", **chat)
    assert per_chunk == pytest.approx(0.1)


def test_cost_total_is_the_exact_decimal_sum():
    m = AgentMetrics()
    for _ in range(10):
        model_call(m, cost_usd=Decimal("0.1"))
    model_call(m, model="gpt-4o-mini", cost_usd=Decimal("0.000001"))
    assert m.cost_usd_total("gpt-4o") == Decimal("1.0")
    # ten float increments of 0.1 would give 0.9999999999999999
    assert value(m, "streamagent_llm_cost_usd_total", model="gpt-4o") == 1.0
    assert value(m, "streamagent_llm_cost_usd_total", model="gpt-4o-mini") == 1e-06


def test_unknown_price_counts_an_unpriced_call_not_zero_dollars():
    m = AgentMetrics()
    model_call(m, model="my-local-model", cost_usd=None)
    assert value(m, "streamagent_llm_unpriced_calls_total", model="my-local-model") == 1
    assert ("streamagent_llm_cost_usd_total", (("model", "my-local-model"),)) not in samples(m)


def test_no_time_to_first_chunk_when_nothing_streamed():
    m = AgentMetrics()
    model_call(m, time_to_first_token_seconds=None, output_chunks=1)
    chat = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "gpt-4o"}
    assert value(m, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **chat) == 0
    assert value(m, "gen_ai_client_operation_time_per_output_chunk_seconds_count", **chat) == 0


def test_retries_errors_tools_and_pruning_counters():
    m = AgentMetrics()
    m.on_retry(model="gpt-4o", error=RateLimitedError("429"))
    m.on_retry(model="gpt-4o", error=RateLimitedError("429"))
    m.on_retry(model="gpt-4o", error=StreamBrokenError("cut"))
    m.on_error(ModelUnavailableError("503"))
    m.on_tool_call(tool="read_file", status="success", duration_seconds=0.02)
    m.on_tool_call(tool="read_file", status="error", duration_seconds=0.01)
    m.on_prune(removed_messages=3, removed_tokens=1200)
    m.on_prune(removed_messages=0, removed_tokens=0)
    assert value(m, "streamagent_retries_total", reason="RateLimitedError") == 2
    assert value(m, "streamagent_retries_total", reason="StreamBrokenError") == 1
    assert value(m, "streamagent_errors_total", type="ModelUnavailableError") == 1
    assert value(m, "streamagent_tool_calls_total", tool="read_file", status="success") == 1
    assert value(m, "streamagent_tool_calls_total", tool="read_file", status="error") == 1
    assert value(m, "streamagent_tool_duration_seconds_count", tool="read_file") == 2
    assert value(m, "streamagent_pruned_messages_total") == 3
    assert value(m, "streamagent_pruned_tokens_total") == 1200


def test_error_with_latency_is_timed_with_its_error_type():
    m = AgentMetrics()
    m.on_error(RateLimitedError("429"), model="gpt-4o", latency_seconds=0.5)
    assert (
        value(
            m,
            "gen_ai_client_operation_duration_seconds_sum",
            gen_ai_operation_name="chat",
            gen_ai_request_model="gpt-4o",
            error_type="RateLimitedError",
        )
        == 0.5
    )


def test_a_broken_hook_call_is_logged_never_raised(caplog):
    m = AgentMetrics()
    m.on_model_call(
        model="gpt-4o",
        usage=None,
        cost_usd=None,  # type: ignore[arg-type]
        latency_seconds=0.1,
        time_to_first_token_seconds=None,
        output_chunks=0,
    )
    assert "recording metrics in on_model_call failed" in caplog.text


def test_label_names_never_include_thread_or_user_ids():
    m = AgentMetrics()
    model_call(m)
    m.on_tool_call(tool="t", status="success", duration_seconds=0.0)
    m.on_retry(model="gpt-4o", error=RateLimitedError("x"))
    m.on_error(RateLimitedError("x"))
    m.on_checkpoint_operation(operation="put", duration_seconds=0.001)
    labels = {k for _, lbls in samples(m) for k, _ in lbls}
    assert labels <= {
        "gen_ai_operation_name",
        "gen_ai_request_model",
        "gen_ai_token_type",
        "error_type",
        "model",
        "tool",
        "status",
        "reason",
        "type",
        "operation",
        "le",
    }


async def test_asgi_app_serves_the_registry():
    m = AgentMetrics()
    m.on_prune(removed_messages=2, removed_tokens=10)
    app = metrics_asgi_app(m)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/metrics",
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert b"streamagent_pruned_messages_total 2.0" in sent[1]["body"]


# --------------------------------------------------------------------------- InstrumentedSaver
def _put_one(saver: BaseCheckpointSaver[Any], thread: str) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    checkpoint = empty_checkpoint()
    return saver.put(config, checkpoint, {"source": "input", "step": 0}, {})  # type: ignore[arg-type]


def test_instrumented_saver_delegates_and_times_sync_operations():
    inner = InMemorySaver()
    m = AgentMetrics()
    saver = InstrumentedSaver(inner, m)
    stored = _put_one(saver, "t1")
    saver.put_writes(stored, [("messages", "x")], "task-1")
    got = saver.get_tuple(stored)
    assert got is not None and got.checkpoint["id"] == stored["configurable"]["checkpoint_id"]
    assert inner.get_tuple(stored) is not None, "writes reached the wrapped saver"
    assert len(list(saver.list({"configurable": {"thread_id": "t1"}}))) == 1
    saver.delete_thread("t1")
    assert inner.get_tuple({"configurable": {"thread_id": "t1"}}) is None
    with pytest.raises(NotImplementedError):  # InMemorySaver has no copy_thread: not hidden
        saver.copy_thread("t1", "t2")
    # ... and the wrapper does not claim it either (capability detection sees the same)
    assert type(saver).copy_thread is BaseCheckpointSaver.copy_thread
    for op in ("put", "put_writes", "get_tuple", "list", "delete_thread"):
        count = value(m, "streamagent_checkpoint_operation_duration_seconds_count", operation=op)
        assert count >= 1, op
    # InMemorySaver versions are "<counter>.<random>": the counter part comes from the inner saver
    version = saver.get_next_version(None, None)
    assert version.split(".")[0] == inner.get_next_version(None, None).split(".")[0]
    assert saver.serde is inner.serde


async def test_instrumented_saver_delegates_and_times_async_operations():
    inner = InMemorySaver()
    m = AgentMetrics()
    saver = InstrumentedSaver(inner, m)
    config = {"configurable": {"thread_id": "a1", "checkpoint_ns": ""}}
    stored = await saver.aput(config, empty_checkpoint(), {"source": "input", "step": 0}, {})  # type: ignore[arg-type]
    await saver.aput_writes(stored, [("messages", "y")], "task-1")
    assert (await saver.aget_tuple(stored)) is not None
    assert len([c async for c in saver.alist({"configurable": {"thread_id": "a1"}})]) == 1
    await saver.adelete_thread("a1")
    assert inner.get_tuple({"configurable": {"thread_id": "a1"}}) is None
    for op in ("put", "put_writes", "get_tuple", "list", "delete_thread"):
        count = value(m, "streamagent_checkpoint_operation_duration_seconds_count", operation=op)
        assert count >= 1, op


def test_instrumented_saver_times_failures_and_reraises_them():
    class Broken(InMemorySaver):
        def put(self, *args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("redis down")

    m = AgentMetrics()
    saver = InstrumentedSaver(Broken(), m)
    with pytest.raises(ConnectionError, match="redis down"):
        _put_one(saver, "x")
    assert value(m, "streamagent_checkpoint_operation_duration_seconds_count", operation="put") == 1


def test_instrumented_saver_forwards_unknown_attributes_and_works_in_a_graph():
    from langgraph.graph import START, MessagesState, StateGraph

    inner = InMemorySaver()
    m = AgentMetrics()
    saver = InstrumentedSaver(inner, m)
    assert saver.storage is inner.storage  # an attribute only the wrapped saver has

    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [("ai", "pong")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    app = builder.compile(checkpointer=saver)
    cfg = {"configurable": {"thread_id": "g"}}
    asyncio.run(app.ainvoke({"messages": [("user", "ping")]}, cfg))  # type: ignore[arg-type]
    out = app.invoke({"messages": [("user", "again")]}, cfg)  # type: ignore[arg-type]
    assert [msg.content for msg in out["messages"]] == ["ping", "pong", "again", "pong"]
    assert value(m, "streamagent_checkpoint_operation_duration_seconds_count", operation="put") >= 4
