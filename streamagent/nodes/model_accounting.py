"""The model node's accounting of one successful call: usage, cost, run steps (pure).

:meth:`ModelAccounting.settle` turns a reply into the node's state update: the server's
usage (or tiktoken's estimate when the server sent none, marked ``usage_estimated``), its
cost (``None`` when the model's price is unknown), the run's step count, and the reply
stamped with ``cost_usd``, ``attempts`` and the agent's name. :func:`report_call` tells the
observer and the current LangSmith run about it.

Example:
    >>> from langchain_core.messages import AIMessage, HumanMessage
    >>> from streamagent.accounting.cost import CostCalculator
    >>> from streamagent.accounting.tokens import TokenCounter
    >>> accounting = ModelAccounting(name="agent", model_name="gpt-4o",
    ...                              counter=TokenCounter("gpt-4o"), costs=CostCalculator())
    >>> reply = AIMessage("hello", usage_metadata={
    ...     "input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100})
    >>> settled = accounting.settle({"messages": [HumanMessage("hi")]}, reply,
    ...                             [HumanMessage("hi")], attempts=1)
    >>> settled.cost_usd, settled.update["run_steps"], reply.name
    (Decimal('0.0035'), 1, 'agent')
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.tools import BaseTool

from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.accounting.tokens import TokenCounter
from streamagent.nodes._quirks import estimated_usage
from streamagent.observability.observer import AgentObserver
from streamagent.observability.tracing import annotate_current_run, model_run_metadata

__all__ = ["ModelAccounting", "Settlement", "report_call", "run_steps"]


def run_steps(state: dict[str, Any]) -> int:
    """Model calls so far in this run: a run starts with a new (non-tool) message, so zero then
    (the prune node also resets the counter, but the graph skips it when it has nothing to do)."""
    messages = state.get("messages") or []
    if not messages or not isinstance(messages[-1], ToolMessage):
        return 0
    return int(state.get("run_steps") or 0)


class Settlement(NamedTuple):
    """One call's accounting: its usage and cost, and the node's state update."""

    usage: Usage
    cost_usd: Decimal | None
    update: dict[str, Any]


class ModelAccounting:
    """Usage and cost of the agent ``name``'s model calls.

    ``model_name`` prices a call that names no model; ``tools`` are the schemas sent with each
    call (counted in an estimate of the prompt).
    """

    def __init__(
        self,
        *,
        name: str,
        model_name: str,
        counter: TokenCounter,
        costs: CostCalculator,
        tools: Sequence[BaseTool] = (),
    ) -> None:
        self.name = name
        self.model_name = model_name
        self.counter = counter
        self.costs = costs
        self.tools = list(tools)

    def usage(self, message: AIMessage, messages: Sequence[BaseMessage]) -> Usage:
        """The call's usage: the server's, else tiktoken's estimate (``usage_estimated``)."""
        if message.usage_metadata is None:  # the server sent none: tiktoken's estimate
            usage = estimated_usage(self.counter, messages, message, self.tools)
            message.response_metadata["usage_estimated"] = True
            return usage
        return Usage.from_usage_metadata(message.usage_metadata)

    def settle(
        self,
        state: dict[str, Any],
        message: AIMessage,
        messages: Sequence[BaseMessage],
        *,
        attempts: int,
        model: str | None = None,
    ) -> Settlement:
        """The update for the reply ``message`` to ``messages`` after ``attempts`` attempts
        (the reply is stamped with its cost, attempts and, when it has none, the agent's name).
        """
        usage = self.usage(message, messages)
        cost = self.costs.cost(usage, model=model or self.model_name)
        message.response_metadata["cost_usd"] = None if cost is None else str(cost)
        message.response_metadata["attempts"] = attempts
        if message.name is None:
            message.name = self.name
        update = {
            "messages": [message],
            "usage": usage.to_dict(),
            "cost_usd": cost,
            "run_steps": run_steps(state) + 1,
        }
        return Settlement(usage=usage, cost_usd=cost, update=update)


def report_call(
    observer: AgentObserver,
    settled: Settlement,
    message: AIMessage,
    *,
    model: str,
    attempts: int,
    started: float,
    first_token_at: float | None,
) -> None:
    """Tell ``observer`` (``on_model_call``) and the current LangSmith run about a call that
    started at ``started`` (``time.perf_counter``) and streamed its first token at
    ``first_token_at``."""
    latency = time.perf_counter() - started
    ttft = None if first_token_at is None else first_token_at - started
    observer.on_model_call(
        model=model,
        usage=settled.usage,
        cost_usd=settled.cost_usd,
        latency_seconds=latency,
        time_to_first_token_seconds=ttft,
        output_chunks=int(message.response_metadata.get("streamed_chunks", 0)),
    )
    annotate_current_run(
        model_run_metadata(
            model=model, usage=settled.usage, cost_usd=settled.cost_usd, attempts=attempts
        )
    )
