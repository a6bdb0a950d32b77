"""The observer protocol the nodes report to (Prometheus metrics implement it).

Nodes call these hooks synchronously; implementations must be cheap and never raise.

Example:
    >>> obs = NullObserver()
    >>> obs.on_tool_call(tool="read_file", status="success", duration_seconds=0.01)
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
    """Hooks called by the prune, model and tools nodes."""

    def on_model_call(
        self,
        *,
        model: str,
        usage: Usage,
        cost_usd: Decimal | None,
        latency_seconds: float,
        time_to_first_token_seconds: float | None,
        output_chunks: int,
    ) -> None: ...

    def on_retry(self, *, model: str, error: StreamAgentError) -> None: ...

    def on_error(self, error: StreamAgentError) -> None: ...

    def on_tool_call(self, *, tool: str, status: str, duration_seconds: float) -> None: ...

    def on_prune(self, *, removed_messages: int, removed_tokens: int) -> None: ...


class NullObserver:
    """Does nothing (the default)."""

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
        return None

    def on_retry(self, *, model: str, error: StreamAgentError) -> None:
        return None

    def on_error(self, error: StreamAgentError) -> None:
        return None

    def on_tool_call(self, *, tool: str, status: str, duration_seconds: float) -> None:
        return None

    def on_prune(self, *, removed_messages: int, removed_tokens: int) -> None:
        return None
