"""Prometheus metrics for the agent (opt-in), an
:class:`~streamagent.observability.observer.AgentObserver`.

Nothing is registered at import: :class:`AgentMetrics` creates its own ``CollectorRegistry``
(unless given one) and registers the standard process collector (memory, CPU, open files) on
it. Names follow the OpenTelemetry GenAI semantic conventions, mapped to Prometheus the way
the OpenTelemetry Prometheus exporter maps them (dots → underscores, unit suffix appended):

==========================================================  =====================================
``gen_ai_client_operation_duration_seconds``                 one model call, retries included
                                                             (labels ``gen_ai_operation_name``,
                                                             ``gen_ai_request_model``,
                                                             ``error_type`` — empty on success)
``gen_ai_client_token_usage``                                tokens per call, ``gen_ai_token_type``
                                                             = ``input`` / ``output`` / ``cached``
                                                             (cached is a subset of input)
``gen_ai_client_operation_time_to_first_chunk_seconds``      request → first streamed token
``gen_ai_client_operation_time_per_output_chunk_seconds``    mean gap between streamed chunks after
                                                             the first, one observation per call
``streamagent_llm_cost_usd_total{model}``                    exact sum of call costs (Decimal)
``streamagent_llm_unpriced_calls_total{model}``              calls whose price is unknown
``streamagent_tool_calls_total{tool,status}``                tool calls by outcome
``streamagent_tool_duration_seconds{tool}``                  tool run time
``streamagent_retries_total{reason}``                        retried model attempts, by error class
``streamagent_errors_total{type}``                           errors surfaced to the caller
``streamagent_pruned_messages_total``                        messages dropped by the prune node
``streamagent_pruned_tokens_total``                          tokens those messages held
``streamagent_checkpoint_operation_duration_seconds``        saver calls (see
                                                             :class:`streamagent.observability.saver_timing.
                                                             InstrumentedSaver`)
==========================================================  =====================================

Labels never carry thread or user ids (unbounded cardinality, and personal data).

Example:
    >>> from decimal import Decimal
    >>> from streamagent.accounting.cost import Usage
    >>> metrics = AgentMetrics()
    >>> metrics.on_model_call(model="gpt-4o", usage=Usage(input_tokens=10, output_tokens=2),
    ...     cost_usd=Decimal("0.000045"), latency_seconds=0.4,
    ...     time_to_first_token_seconds=0.1, output_chunks=3)
    >>> b"streamagent_llm_cost_usd_total{model=\\"gpt-4o\\"} 4.5e-05" in metrics.exposition()
    True
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ParamSpec
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
    make_asgi_app,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streamagent.accounting.cost import Usage
    from streamagent.errors import StreamAgentError

__all__ = ["AgentMetrics", "metrics_asgi_app", "start_metrics_server"]

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")

#: ``gen_ai.operation.name`` of a chat completion.
OPERATION_CHAT = "chat"

# Bucket boundaries recommended by the GenAI semantic conventions.
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1, 4, 16, ... 67108864
_FIRST_CHUNK_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_PER_CHUNK_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip
_TOOL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_CHECKPOINT_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip


def _never_raises(method: Callable[_P, None]) -> Callable[_P, None]:
    """Observer hooks run inside the nodes: a metrics bug must not fail an agent run."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            method(*args, **kwargs)
        except Exception:
            logger.exception("recording metrics in %s failed", method.__name__)

    return wrapper


class _CostCollector(Collector):
    """``streamagent_llm_cost_usd_total{model}`` kept as exact ``Decimal`` sums.

    A float counter would accumulate rounding error over millions of tiny increments; this
    collector converts the exact total to float only when scraped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, Decimal] = {}

    def add(self, model: str, cost: Decimal) -> None:
        with self._lock:
            self._totals[model] = self._totals.get(model, Decimal(0)) + cost

    def total(self, model: str) -> Decimal:
        with self._lock:
            return self._totals.get(model, Decimal(0))

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "streamagent_llm_cost_usd",
            "Cost of model calls in USD (exact sum of per-call costs; unpriced calls excluded).",
            labels=["model"],
        )
        with self._lock:
            items = sorted(self._totals.items())
        for model, total in items:
            family.add_metric([model], float(total))
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("streamagent_llm_cost_usd", "", labels=["model"])


class AgentMetrics:
    """Prometheus metrics fed by the agent's nodes; pass it as ``observer=`` to the graph.

    ``registry`` defaults to a fresh ``CollectorRegistry`` (never the global one), so two
    instances never clash and importing this module changes nothing. ``process_metrics``
    registers the standard process collector (skipped, with a debug log, when the registry
    already has one).

    Example:
        >>> from streamagent import AgentConfig, ModelConfig, build_agent
        >>> metrics = AgentMetrics()
        >>> agent = build_agent(config=AgentConfig(model=ModelConfig(api_key="sk-x")),
        ...                     checkpointer=False, observer=metrics)
        >>> server, thread = start_metrics_server(0, metrics=metrics)   # 0: any free port
        >>> server.server_port > 0
        True
        >>> server.shutdown(); server.server_close()
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, process_metrics: bool = True
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration: one model call including its retries.",
            ["gen_ai_operation_name", "gen_ai_request_model", "error_type"],
            buckets=_DURATION_BUCKETS,
            registry=reg,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per model call by gen_ai_token_type (input, output, cached ⊂ input).",
            ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=reg,
        )
        self.time_to_first_chunk = Histogram(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time from issuing the request to receiving the first streamed token.",
            ["gen_ai_operation_name", "gen_ai_request_model"],
            buckets=_FIRST_CHUNK_BUCKETS,
            registry=reg,
        )
        self.time_per_output_chunk = Histogram(
            "gen_ai_client_operation_time_per_output_chunk_seconds",
            "Mean time between streamed chunks after the first (one observation per call).",
            ["gen_ai_operation_name", "gen_ai_request_model"],
            buckets=_PER_CHUNK_BUCKETS,
            registry=reg,
        )
        self._cost = _CostCollector()
        reg.register(self._cost)
        self.unpriced_calls = Counter(
            "streamagent_llm_unpriced_calls",
            "Model calls whose price is unknown (their cost is not in the cost total).",
            ["model"],
            registry=reg,
        )
        self.tool_calls = Counter(
            "streamagent_tool_calls",
            "Tool calls by tool and status (success or error).",
            ["tool", "status"],
            registry=reg,
        )
        self.tool_duration = Histogram(
            "streamagent_tool_duration_seconds",
            "Tool run time.",
            ["tool"],
            buckets=_TOOL_BUCKETS,
            registry=reg,
        )
        self.retries = Counter(
            "streamagent_retries",
            "Retried model attempts, by the error class that caused the retry.",
            ["reason"],
            registry=reg,
        )
        self.errors = Counter(
            "streamagent_errors",
            "Errors surfaced to the caller, by error class.",
            ["type"],
            registry=reg,
        )
        self.pruned_messages = Counter(
            "streamagent_pruned_messages", "Messages dropped by the prune node.", registry=reg
        )
        self.pruned_tokens = Counter(
            "streamagent_pruned_tokens",
            "Tokens held by the messages the prune node dropped.",
            registry=reg,
        )
        self.checkpoint_duration = Histogram(
            "streamagent_checkpoint_operation_duration_seconds",
            "Checkpoint saver call duration by operation (get_tuple, put, put_writes, list...).",
            ["operation"],
            buckets=_CHECKPOINT_BUCKETS,
            registry=reg,
        )
        if process_metrics:
            self._register_process_collector()

    def _register_process_collector(self) -> None:
        try:
            ProcessCollector(registry=self.registry)
        except ValueError:
            logger.debug("the registry already has process metrics; not registering them again")

    # ------------------------------------------------------------------ AgentObserver hooks
    @_never_raises
    def on_model_call(
        self,
        *,
        model: str,
        usage: Usage,
        cost_usd: Decimal | None,
        latency_seconds: float,
        time_to_first_token_seconds: float | None,
        output_chunks: int,
    ) -> None:
        model = str(model)
        self.operation_duration.labels(OPERATION_CHAT, model, "").observe(latency_seconds)
        for token_type, count in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cached", usage.cached_input_tokens),
        ):
            self.token_usage.labels(OPERATION_CHAT, model, token_type).observe(count)
        if cost_usd is None:
            self.unpriced_calls.labels(model).inc()
        else:
            self._cost.add(model, cost_usd)
        if time_to_first_token_seconds is not None:
            self.time_to_first_chunk.labels(OPERATION_CHAT, model).observe(
                time_to_first_token_seconds
            )
            if output_chunks > 1:
                per_chunk = (latency_seconds - time_to_first_token_seconds) / (output_chunks - 1)
                self.time_per_output_chunk.labels(OPERATION_CHAT, model).observe(
                    max(0.0, per_chunk)
                )

    @_never_raises
    def on_retry(self, *, model: str, error: StreamAgentError) -> None:
        self.retries.labels(type(error).__name__).inc()

    @_never_raises
    def on_error(
        self,
        error: StreamAgentError,
        *,
        model: str | None = None,
        latency_seconds: float | None = None,
    ) -> None:
        """Count a surfaced error; with ``model`` and ``latency_seconds`` also time the call."""
        error_type = type(error).__name__
        self.errors.labels(error_type).inc()
        if model is not None and latency_seconds is not None:
            self.operation_duration.labels(OPERATION_CHAT, str(model), error_type).observe(
                latency_seconds
            )

    @_never_raises
    def on_tool_call(self, *, tool: str, status: str, duration_seconds: float) -> None:
        self.tool_calls.labels(str(tool), str(status)).inc()
        self.tool_duration.labels(str(tool)).observe(duration_seconds)

    @_never_raises
    def on_prune(self, *, removed_messages: int, removed_tokens: int) -> None:
        if removed_messages > 0:
            self.pruned_messages.inc(removed_messages)
        if removed_tokens > 0:
            self.pruned_tokens.inc(removed_tokens)

    @_never_raises
    def on_checkpoint_operation(self, *, operation: str, duration_seconds: float) -> None:
        """Called by :class:`streamagent.observability.saver_timing.InstrumentedSaver`."""
        self.checkpoint_duration.labels(operation).observe(duration_seconds)

    # ------------------------------------------------------------------ reading
    def cost_usd_total(self, model: str) -> Decimal:
        """The exact cost recorded for ``model`` so far."""
        return self._cost.total(model)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)


def start_metrics_server(
    port: int, *, metrics: AgentMetrics, addr: str = "127.0.0.1"
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``metrics`` at ``http://addr:port/metrics`` from a daemon thread.

    Binds to loopback unless told otherwise; ``port=0`` picks a free port
    (read it from ``server.server_port``). Stop it with ``server.shutdown()`` then
    ``server.server_close()``.

    Example:
        >>> import urllib.request
        >>> m = AgentMetrics()
        >>> server, _ = start_metrics_server(0, metrics=m)
        >>> url = f"http://127.0.0.1:{server.server_port}/metrics"
        >>> b"streamagent_errors" in urllib.request.urlopen(url, timeout=5).read()
        True
        >>> server.shutdown(); server.server_close()
    """
    server, thread = start_http_server(port, addr=addr, registry=metrics.registry)
    logger.info("serving Prometheus metrics on http://%s:%d/metrics", addr, server.server_port)
    return server, thread


def metrics_asgi_app(metrics: AgentMetrics) -> Callable[..., Any]:
    """An ASGI app serving ``metrics`` (mount it at ``/metrics`` in FastAPI/Starlette).

    Example:
        >>> app = metrics_asgi_app(AgentMetrics())
        >>> callable(app)
        True
    """
    app: Callable[..., Any] = make_asgi_app(registry=metrics.registry)
    return app
