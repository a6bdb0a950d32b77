"""Seeing a run: the observer hooks, Prometheus metrics, saver timing, LangSmith metadata, GC.

- :class:`AgentMetrics` (:mod:`~streamagent.observability.metrics`): Prometheus metrics and
  their HTTP endpoint; :class:`InstrumentedSaver` times a checkpointer's calls;
- :mod:`~streamagent.observability.observer`: the hooks the nodes call;
- :mod:`~streamagent.observability.tracing`: what LangSmith's run tree carries;
- :func:`tune_gc` / :func:`restore_gc` (:mod:`~streamagent.observability.gc`).

Example:
    >>> from prometheus_client import CollectorRegistry
    >>> metrics = AgentMetrics(registry=CollectorRegistry())
    >>> type(metrics).__name__
    'AgentMetrics'
"""

from streamagent.observability.gc import restore_gc, tune_gc
from streamagent.observability.metrics import AgentMetrics, start_metrics_server
from streamagent.observability.observer import AgentObserver, NullObserver
from streamagent.observability.saver_timing import InstrumentedSaver

__all__ = [
    "AgentMetrics",
    "AgentObserver",
    "InstrumentedSaver",
    "NullObserver",
    "restore_gc",
    "start_metrics_server",
    "tune_gc",
]
