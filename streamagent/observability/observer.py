"""The observer protocol the nodes report to (Prometheus metrics implement it).

Nodes call these hooks synchronously; implementations must be cheap and never raise. Any
object with these methods is an observer; subclassing :class:`AgentObserver` gives the hooks
you do not override as no-ops (:class:`NullObserver`, the default, overrides none).

``on_error`` may also accept ``model=`` and ``latency_seconds=`` keywords: the model node then
passes the failed call's model and duration (``AgentMetrics`` times the call under its
``error_type``); with the one-argument form it gets the error alone.

Example:
    >>> obs = NullObserver()
    >>> obs.on_tool_call(tool="read_file", status="success", duration_seconds=0.01)
    >>> class ToolLog(AgentObserver):
    ...     def on_tool_call(self, *, tool: str, status: str, duration_seconds: float) -> None:
    ...         print(tool, status)
    >>> ToolLog().on_tool_call(tool="read_file", status="error", duration_seconds=0.2)
    read_file error
    >>> isinstance(ToolLog(), AgentObserver)
    True
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from streamagent.accounting.cost import Usage
    from streamagent.errors import StreamAgentError

__all__ = ["AgentObserver", "NullObserver"]


@runtime_checkable
class AgentObserver(Protocol):
    """Hooks called by the prune, model and tools nodes (each a no-op here)."""

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
        """A model call succeeded (retries included in ``latency_seconds``)."""
        return

    def on_retry(self, *, model: str, error: StreamAgentError) -> None:
        """A model attempt failed with ``error`` and is retried."""
        return

    def on_error(self, error: StreamAgentError) -> None:
        """An error reached the caller (see the module for the timed form)."""
        return

    def on_tool_call(self, *, tool: str, status: str, duration_seconds: float) -> None:
        """A tool call ended (``status``: ``success`` or ``error``)."""
        return

    def on_prune(self, *, removed_messages: int, removed_tokens: int) -> None:
        """The prune node dropped messages."""
        return


class NullObserver(AgentObserver):
    """Does nothing (the default)."""
