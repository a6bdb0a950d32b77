"""The model node's budgets, alone: a thread's state and messages in, a cap or a refusal out
(no model is built or called)."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from streamagent.accounting.tokens import TokenCounter
from streamagent.config import AgentConfig, ModelConfig, ModelPrice
from streamagent.errors import BudgetExceededError, StepLimitExceededError, StreamAgentError
from streamagent.nodes.model_budget import ModelBudget, output_cap

PRICES = {
    # $1 per 1M input tokens: one input token costs $0.000001
    "house-model": ModelPrice(input_usd_per_1m=Decimal(1), output_usd_per_1m=Decimal(2)),
    "dear-model": ModelPrice(input_usd_per_1m=Decimal(1000), output_usd_per_1m=Decimal(2000)),
}
ASK: list[BaseMessage] = [HumanMessage("how many files are there?")]


def budget(**agent: Any) -> ModelBudget:
    model = ModelConfig(api_key="k", model=agent.pop("model", "house-model"))
    return ModelBudget(AgentConfig(model=model, prices=PRICES, **agent))


def mid_run(run_steps: int, **state: Any) -> dict[str, Any]:
    """A thread in the middle of a run: the last message answers a tool call."""
    call = {"name": "ls", "args": {}, "id": "c1", "type": "tool_call"}
    messages = [*ASK, AIMessage("", tool_calls=[call]), ToolMessage("3", tool_call_id="c1")]
    return {"messages": messages, "run_steps": run_steps, **state}


def estimate(messages: list[BaseMessage]) -> int:
    return TokenCounter("house-model").count_messages(messages)


class Heard:
    def __init__(self) -> None:
        self.errors: list[StreamAgentError] = []

    def on_error(self, error: StreamAgentError) -> None:
        self.errors.append(error)


# ---------------------------------------------------------------------- steps
def test_a_run_at_max_steps_is_refused() -> None:
    with pytest.raises(StepLimitExceededError, match="made 3 model calls"):
        budget(max_steps=3).check(mid_run(3), ASK)


def test_a_run_below_max_steps_is_not() -> None:
    assert budget(max_steps=3).check(mid_run(2), ASK) is None


def test_a_new_user_message_starts_a_new_run_whatever_the_counter_says() -> None:
    state = {"messages": ASK, "run_steps": 99}
    assert budget(max_steps=3).check(state, ASK) is None


# ---------------------------------------------------------------------- tokens
def test_without_token_or_cost_budget_there_is_no_cap() -> None:
    assert budget().check({"messages": ASK, "usage": {"input_tokens": 10**9}}, ASK) is None


def test_the_room_left_is_the_budget_minus_what_was_used_and_the_next_input() -> None:
    state = {"messages": ASK, "usage": {"input_tokens": 600, "output_tokens": 100}}
    room = budget(max_total_tokens=1_000).check(state, ASK)
    assert room == 1_000 - 700 - estimate(ASK)


def test_a_thread_with_no_room_left_is_refused_and_a_new_message_rejected() -> None:
    full = 1_000 - estimate(ASK)  # leaves exactly zero tokens of output
    state = {"messages": ASK, "usage": {"input_tokens": full}}
    with pytest.raises(BudgetExceededError, match="token budget reached") as info:
        budget(max_total_tokens=1_000).check(state, ASK)
    assert info.value.rejects_input is True  # the run's first call: the message leaves


def test_a_refusal_mid_run_keeps_the_input() -> None:
    state = mid_run(1, usage={"input_tokens": 10_000})
    with pytest.raises(BudgetExceededError) as info:
        budget(max_total_tokens=1_000).check(state, ASK)
    assert info.value.rejects_input is False


def test_one_token_of_room_is_enough() -> None:
    state = {"messages": ASK, "usage": {"input_tokens": 1_000 - estimate(ASK) - 1}}
    assert budget(max_total_tokens=1_000).check(state, ASK) == 1


# ---------------------------------------------------------------------- cost
def test_a_call_that_would_pass_the_cost_budget_is_refused() -> None:
    cost_of_next = Decimal(estimate(ASK)) / 1_000_000
    state = {"messages": ASK, "usage": {"requests": 1}, "cost_usd": Decimal("0.5")}
    ok = budget(max_cost_usd=Decimal("0.5") + cost_of_next)
    assert ok.check(state, ASK) is None  # exactly at the budget is allowed
    with pytest.raises(BudgetExceededError, match="cost budget reached") as info:
        budget(max_cost_usd=Decimal("0.5") + cost_of_next / 2).check(state, ASK)
    assert info.value.rejects_input is True


def test_the_next_call_is_priced_as_the_model_the_run_calls() -> None:
    state = {"messages": ASK, "usage": {"requests": 1}, "cost_usd": Decimal(0)}
    cheap_enough = budget(max_cost_usd=Decimal("0.001"))
    assert cheap_enough.check(state, ASK, model="house-model") is None
    with pytest.raises(BudgetExceededError):
        cheap_enough.check(state, ASK, model="dear-model")


def test_a_cost_budget_keeps_the_token_cap() -> None:
    state = {"messages": ASK, "usage": {"requests": 1}, "cost_usd": Decimal(0)}
    both = budget(max_cost_usd=Decimal(1), max_total_tokens=1_000)
    assert both.check(state, ASK) == 1_000 - estimate(ASK)


def test_an_unknown_price_cannot_enforce_a_cost_budget(caplog: pytest.LogCaptureFixture) -> None:
    state = {"messages": ASK, "usage": {"requests": 1}, "cost_usd": None}
    unknown = budget(model="no-such-model-xyz", max_cost_usd=Decimal(1), max_total_tokens=10**6)
    with caplog.at_level(logging.WARNING, logger="streamagent.nodes.model"):
        room = unknown.check(state, ASK)
    assert room == 10**6 - estimate(ASK)
    assert "max_cost_usd cannot be enforced" in caplog.text


def test_the_first_call_of_a_thread_is_not_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    fresh = {"messages": ASK}  # no cost yet: nothing was spent, nothing to warn about
    with caplog.at_level(logging.WARNING, logger="streamagent.nodes.model"):
        assert budget(max_cost_usd=Decimal(1)).check(fresh, ASK) is None
    assert "cannot be enforced" not in caplog.text


# ---------------------------------------------------------------------- observer, cap
def test_checked_tells_the_observer_about_a_refusal_before_raising() -> None:
    heard = Heard()
    config = AgentConfig(model=ModelConfig(api_key="k"), max_steps=1)
    with pytest.raises(StepLimitExceededError) as info:
        ModelBudget(config, observer=heard).checked(mid_run(1), ASK, model="m")
    assert heard.errors == [info.value]


def test_checked_is_silent_when_the_call_fits() -> None:
    heard = Heard()
    config = AgentConfig(model=ModelConfig(api_key="k"))
    assert ModelBudget(config, observer=heard).checked({"messages": ASK}, ASK, model="m") is None
    assert heard.errors == []


@pytest.mark.parametrize(
    ("room", "limit", "cap"),
    [
        (None, 100, None),  # no token budget: no cap
        (500, 100, None),  # the call's own limit is lower: it stands
        (100, 100, None),
        (99, 100, 99),  # the budget leaves less: the cap
        (50, None, 50),  # a model without max_tokens
        (50, True, 50),  # a bool is not a limit
        (50, "100", 50),  # nor a string
    ],
)
def test_output_cap(room: int | None, limit: Any, cap: int | None) -> None:
    assert output_cap(room, limit) == cap
