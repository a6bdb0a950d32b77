"""The model node's accounting, alone: a reply in, usage, cost and the state update out."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.accounting.tokens import TokenCounter
from streamagent.config import ModelPrice
from streamagent.nodes.model_accounting import ModelAccounting, Settlement, report_call, run_steps

PRICES = {
    "house-model": ModelPrice(input_usd_per_1m=Decimal(1), output_usd_per_1m=Decimal(2)),
    "dear-model": ModelPrice(input_usd_per_1m=Decimal(10), output_usd_per_1m=Decimal(20)),
}
ASK: list[BaseMessage] = [HumanMessage("list the files")]
COUNTER = TokenCounter("house-model")


@tool
def list_files(path: str) -> str:
    """List the files under a directory of the workspace."""
    return path


def accounting(**kwargs: Any) -> ModelAccounting:
    return ModelAccounting(
        name="agent",
        model_name="house-model",
        counter=COUNTER,
        costs=CostCalculator(prices=PRICES),
        **kwargs,
    )


def reply(content: str = "a.txt", **kwargs: Any) -> AIMessage:
    usage = {"input_tokens": 1_000_000, "output_tokens": 500_000, "total_tokens": 1_500_000}
    return AIMessage(content, usage_metadata=kwargs.pop("usage", usage), **kwargs)


# ---------------------------------------------------------------------- run steps
def test_a_run_starts_at_zero_steps_with_a_new_message() -> None:
    assert run_steps({}) == 0
    assert run_steps({"messages": ASK, "run_steps": 5}) == 0


def test_a_run_answering_a_tool_call_counts_its_steps() -> None:
    thread = [*ASK, ToolMessage("a.txt", tool_call_id="c1")]
    assert run_steps({"messages": thread, "run_steps": 5}) == 5
    assert run_steps({"messages": thread, "run_steps": None}) == 0


# ---------------------------------------------------------------------- settle
def test_the_server_usage_is_priced_and_written_to_the_update() -> None:
    message = reply()
    settled = accounting().settle({"messages": ASK}, message, ASK, attempts=2)
    assert settled.usage == Usage(input_tokens=1_000_000, output_tokens=500_000, requests=1)
    assert settled.cost_usd == Decimal(2)  # $1 input + $1 output
    assert settled.update == {
        "messages": [message],
        "usage": settled.usage.to_dict(),
        "cost_usd": Decimal(2),
        "run_steps": 1,
    }


def test_the_reply_is_stamped_with_cost_attempts_and_the_agent_name() -> None:
    message = reply()
    accounting().settle({"messages": ASK}, message, ASK, attempts=3)
    assert message.response_metadata["cost_usd"] == "2"
    assert message.response_metadata["attempts"] == 3
    assert message.name == "agent"
    assert "usage_estimated" not in message.response_metadata


def test_a_reply_keeps_its_own_name() -> None:
    message = reply(name="subagent")
    accounting().settle({"messages": ASK}, message, ASK, attempts=1)
    assert message.name == "subagent"


def test_a_call_is_priced_as_the_model_it_called() -> None:
    settled = accounting().settle({}, reply(), ASK, attempts=1, model="dear-model")
    assert settled.cost_usd == Decimal(20)


def test_an_unknown_price_is_an_unknown_cost_not_zero() -> None:
    message = reply()
    settled = accounting().settle({}, message, ASK, attempts=1, model="no-such-model-xyz")
    assert settled.cost_usd is None and settled.update["cost_usd"] is None
    assert message.response_metadata["cost_usd"] is None
    assert settled.usage.input_tokens == 1_000_000  # the usage still counts


def test_the_step_after_a_tool_answer_is_counted() -> None:
    thread = [*ASK, ToolMessage("a.txt", tool_call_id="c1")]
    update = accounting().settle({"messages": thread, "run_steps": 4}, reply(), ASK, attempts=1)
    assert update.update["run_steps"] == 5


def test_a_reply_without_usage_is_estimated_with_the_tool_schemas() -> None:
    plain = accounting().settle({}, reply(usage=None), ASK, attempts=1)
    message = reply(usage=None)
    with_tools = accounting(tools=[list_files]).settle({}, message, ASK, attempts=1)
    assert message.response_metadata["usage_estimated"] is True
    assert with_tools.usage.input_tokens == COUNTER.count_messages(ASK, tools=[list_files])
    assert with_tools.usage.input_tokens > plain.usage.input_tokens  # the schemas were sent
    assert with_tools.usage.output_tokens == COUNTER.count_text("a.txt")
    assert with_tools.usage.requests == 1
    assert with_tools.cost_usd is not None and with_tools.cost_usd > 0


def test_an_estimate_counts_the_tool_calls_the_model_made() -> None:
    call = {"name": "list_files", "args": {"path": "src"}, "id": "c1", "type": "tool_call"}
    text_only = accounting().settle({}, reply("", usage=None), ASK, attempts=1)
    calling = accounting().settle({}, reply("", usage=None, tool_calls=[call]), ASK, attempts=1)
    assert calling.usage.output_tokens > text_only.usage.output_tokens


# ---------------------------------------------------------------------- report
class Heard:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_model_call(self, **call: Any) -> None:
        self.calls.append(call)


def test_report_call_tells_the_observer_what_the_call_cost_and_how_it_streamed() -> None:
    heard = Heard()
    message = reply()
    message.response_metadata["streamed_chunks"] = 42
    settled = Settlement(usage=Usage(input_tokens=7, requests=1), cost_usd=Decimal(3), update={})
    started = time.perf_counter() - 10
    report_call(
        heard,  # type: ignore[arg-type]
        settled,
        message,
        model="house-model",
        attempts=2,
        started=started,
        first_token_at=started + 0.25,
    )
    (call,) = heard.calls
    assert call["model"] == "house-model"
    assert call["usage"] == settled.usage and call["cost_usd"] == Decimal(3)
    assert call["output_chunks"] == 42
    assert call["time_to_first_token_seconds"] == pytest.approx(0.25)
    assert call["latency_seconds"] >= 10


def test_a_call_that_streamed_no_token_has_no_time_to_first_token() -> None:
    heard = Heard()
    settled = Settlement(usage=Usage(), cost_usd=None, update={})
    report_call(
        heard,  # type: ignore[arg-type]
        settled,
        reply(),
        model="m",
        attempts=1,
        started=time.perf_counter(),
        first_token_at=None,
    )
    assert heard.calls[0]["time_to_first_token_seconds"] is None
    assert heard.calls[0]["output_chunks"] == 0
