"""The agent's graph state.

``messages`` uses LangGraph's ``add_messages`` reducer, so the agent composes with any parent
graph whose state has a ``messages`` key. ``usage`` and ``cost_usd`` accumulate over the
thread; ``run_steps`` counts model calls in the current run (reset by the prune node at the
start of each run) and bounds tool loops.

Example:
    >>> from streamagent.state import add_usage
    >>> add_usage({"input_tokens": 3, "output_tokens": 1}, {"input_tokens": 2})["input_tokens"]
    5
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, NotRequired, TypedDict, cast

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

__all__ = ["USAGE_KEYS", "AgentState", "ContextView", "UsageTotals", "add_cost", "add_usage"]

USAGE_KEYS = (
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "requests",
)


class UsageTotals(TypedDict, total=False):
    """Token counts summed over a thread (all ints)."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    requests: int


def add_usage(left: UsageTotals | None, right: UsageTotals | None) -> UsageTotals:
    """Reducer: sum two usage dicts key by key."""
    lhs: Mapping[str, int] = cast("Mapping[str, int]", left or {})
    rhs: Mapping[str, int] = cast("Mapping[str, int]", right or {})
    out = {key: int(lhs.get(key, 0)) + int(rhs.get(key, 0)) for key in USAGE_KEYS}
    return cast("UsageTotals", out)


def add_cost(left: Decimal | None, right: Decimal | None) -> Decimal | None:
    """Reducer for USD cost. ``None`` means unknown and is sticky.

    The first write to the channel is stored as is (LangGraph does not call the reducer for
    it); after that, a call with an unknown price makes the thread's total unknown.
    """
    if left is None or right is None:
        return None
    return left + right


def _keep_last(left: Any, right: Any) -> Any:
    return right


class ContextView(TypedDict):
    """What the prune node lets the model see: ``kept_ids`` (None = all) and shrunk contents."""

    kept_ids: list[str] | None
    shrunk: dict[str, str]


class AgentState(TypedDict):
    """State of the streamagent graph."""

    messages: Annotated[list[AnyMessage], add_messages]
    usage: NotRequired[Annotated[UsageTotals, add_usage]]
    cost_usd: NotRequired[Annotated[Decimal | None, add_cost]]
    run_steps: NotRequired[Annotated[int, _keep_last]]
    context_view: NotRequired[ContextView]
    #: the validated ``response_format`` value of the last turn (when the graph has one)
    structured_response: NotRequired[Any]
