"""Usage arithmetic and USD cost through genai-prices and user overrides."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

import pytest
from langchain_core.messages import AIMessage

from streamagent.accounting.cost import CostCalculator, Usage, calculate_cost
from streamagent.config import ModelPrice
from streamagent.state import USAGE_KEYS, add_usage

MILLION = 1_000_000


# --------------------------------------------------------------------------- Usage
def test_usage_adds_field_by_field() -> None:
    a = Usage(
        input_tokens=10, cached_input_tokens=4, output_tokens=3, reasoning_tokens=1, requests=1
    )
    b = Usage(input_tokens=5, output_tokens=7, requests=1)
    assert a + b == Usage(
        input_tokens=15, cached_input_tokens=4, output_tokens=10, reasoning_tokens=1, requests=2
    )
    assert (a + b).total_tokens == 25
    assert Usage() + Usage() == Usage()


def test_usage_is_frozen_and_validated() -> None:
    usage = Usage(input_tokens=1)
    with pytest.raises(AttributeError):
        usage.input_tokens = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match="non-negative"):
        Usage(output_tokens=-1)


def test_usage_from_langchain_usage_metadata() -> None:
    message = AIMessage(
        "hi",
        usage_metadata={
            "input_tokens": 120,
            "output_tokens": 30,
            "total_tokens": 150,
            "input_token_details": {"cache_read": 100},
            "output_token_details": {"reasoning": 20},
        },
    )
    assert Usage.from_usage_metadata(message.usage_metadata) == Usage(
        input_tokens=120, cached_input_tokens=100, output_tokens=30, reasoning_tokens=20, requests=1
    )
    minimal = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
    assert Usage.from_usage_metadata(minimal) == Usage(input_tokens=3, output_tokens=1, requests=1)
    assert Usage.from_usage_metadata(None) == Usage()


def test_usage_dict_round_trip_uses_exactly_the_state_keys() -> None:
    usage = Usage(
        input_tokens=9, cached_input_tokens=2, output_tokens=4, reasoning_tokens=1, requests=3
    )
    as_dict = usage.to_dict()
    assert tuple(as_dict) == USAGE_KEYS
    assert Usage.from_dict(as_dict) == usage
    assert Usage.from_dict({"input_tokens": 2}) == Usage(input_tokens=2)
    assert Usage.from_dict(add_usage(as_dict, as_dict)) == usage + usage


# --------------------------------------------------------------------------- cost
def test_gpt4o_million_in_and_out_costs_exactly_12_50() -> None:
    cost = calculate_cost(Usage(input_tokens=MILLION, output_tokens=MILLION), model="gpt-4o")
    assert isinstance(cost, Decimal)
    assert cost == Decimal("12.50")


def test_cached_input_tokens_are_billed_at_the_cached_rate() -> None:
    all_cached = Usage(input_tokens=MILLION, cached_input_tokens=MILLION)
    assert calculate_cost(all_cached, model="gpt-4o") == Decimal("1.25")
    mixed = Usage(input_tokens=1234, cached_input_tokens=200, output_tokens=56)
    expected = (Decimal(1034) * Decimal("2.5") + 200 * Decimal("1.25") + 56 * 10) / MILLION
    assert calculate_cost(mixed, model="gpt-4o") == expected == Decimal("0.003395")


def test_reasoning_tokens_are_not_billed_twice() -> None:
    plain = Usage(input_tokens=100, output_tokens=100)
    with_reasoning = Usage(input_tokens=100, output_tokens=100, reasoning_tokens=80)
    assert calculate_cost(plain, model="o3") == calculate_cost(with_reasoning, model="o3")


def test_provider_prefix_is_stripped() -> None:
    usage = Usage(input_tokens=MILLION, output_tokens=MILLION)
    assert calculate_cost(usage, model="openai/gpt-4o") == Decimal("12.50")
    assert calculate_cost(usage, model="my-gateway/gpt-4o") == Decimal("12.50")


def test_user_override_wins_over_genai_prices() -> None:
    # The TypeScript service's old gpt-4o rate, as a user override.
    prices = {
        "gpt-4o": ModelPrice(
            input_usd_per_1m=Decimal("5"),
            output_usd_per_1m=Decimal("15"),
            cached_input_usd_per_1m=Decimal("2.5"),
        )
    }
    usage = Usage(input_tokens=2 * MILLION, cached_input_tokens=MILLION, output_tokens=MILLION)
    assert calculate_cost(usage, model="gpt-4o", prices=prices) == Decimal("22.5")
    assert CostCalculator(prices=prices).cost(usage, model="openai/gpt-4o") == Decimal("22.5")


def test_override_without_cached_rate_bills_cached_tokens_at_the_input_rate() -> None:
    prices = {
        "local-llm": ModelPrice(input_usd_per_1m=Decimal("0.1"), output_usd_per_1m=Decimal("0.3"))
    }
    usage = Usage(input_tokens=3, cached_input_tokens=1, output_tokens=7)
    assert calculate_cost(usage, model="local-llm", prices=prices) == Decimal("0.0000024")


def test_cost_of_decimal_prices_has_no_float_drift() -> None:
    prices = {"m": ModelPrice(input_usd_per_1m=Decimal("0.1"), output_usd_per_1m=Decimal("0.2"))}
    calc = CostCalculator(prices=prices)
    total = sum(
        (
            calc.cost(Usage(input_tokens=1, output_tokens=1), model="m") or Decimal(0)
            for _ in range(10)
        ),
        Decimal(0),
    )
    assert total == Decimal("0.000003")


def test_unknown_model_costs_none_with_exactly_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = f"unknown-model-{uuid.uuid4().hex[:8]}"
    usage = Usage(input_tokens=10, output_tokens=10, requests=1)
    with caplog.at_level(logging.WARNING, logger="streamagent.accounting.cost"):
        assert calculate_cost(usage, model=model) is None
        assert CostCalculator().cost(usage, model=model) is None
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and model in r.getMessage()
    ]
    assert len(warnings) == 1
    assert "unknown" in warnings[0].getMessage()


def test_zero_usage_of_a_known_model_costs_zero_not_none() -> None:
    assert calculate_cost(Usage(), model="gpt-4o-mini") == Decimal(0)


def test_calculator_caches_the_price_lookup_per_model() -> None:
    calc = CostCalculator()
    usage = Usage(input_tokens=MILLION)
    assert calc.cost(usage, model="gpt-4o-mini") == Decimal("0.15")
    assert calc.cost(usage, model="gpt-4o-mini") == Decimal("0.15")
    assert list(calc._cache) == ["gpt-4o-mini"]


def test_fast_genai_cost_equals_genai_prices_on_its_whole_catalogue() -> None:
    """The per-token rates path gives genai-prices' own total, to the last digit, on every
    model of every provider in its bundled data (tiered prices take genai-prices' path)."""
    import random

    from genai_prices import data_snapshot

    from streamagent.accounting.cost import _exact_genai_cost, _genai_cost, _GenaiPrice

    rng = random.Random(11)
    compared = 0
    for provider in data_snapshot.get_snapshot().providers:
        for model in provider.models:
            price = _GenaiPrice(provider=provider, model_info=model)
            for _ in range(3):
                inp = rng.randint(0, 2_000_000)
                usage = Usage(
                    input_tokens=inp,
                    cached_input_tokens=rng.choice([0, rng.randint(0, inp)]),
                    output_tokens=rng.randint(0, 200_000),
                )
                try:
                    exact = _exact_genai_cost(usage, price)
                except Exception:  # noqa: BLE001 - models genai-prices cannot price for this usage
                    continue
                assert _genai_cost(usage, price) == exact, (provider.id, model.id, usage)
                compared += 1
    assert compared > 500, compared
