"""Token usage as a typed value, and its price in USD.

Prices come from ``genai-prices`` (bundled data, works offline), unless the caller overrides
them with :class:`streamagent.config.ModelPrice` (USD per one million tokens), which always
wins. Conventions (OpenAI's): ``cached_input_tokens`` are a *subset* of ``input_tokens`` and
are billed at the cached-input rate; ``reasoning_tokens`` are part of ``output_tokens``.

A model without a known price costs ``None`` (unknown), never a silent ``$0``; the first time
a model name is seen without a price, one ``logging`` warning is emitted for it per process.
Provider prefixes (``openai/gpt-4o``) are stripped. Costs are exact ``Decimal`` values.

Example:
    >>> usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    >>> calculate_cost(usage, model="gpt-4o")
    Decimal('12.50')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from streamagent.config import ModelPrice
from streamagent.state import USAGE_KEYS, UsageTotals

__all__ = ["CostCalculator", "Usage", "calculate_cost"]

logger = logging.getLogger(__name__)

_PER_MILLION = Decimal(1_000_000)
_DEFAULT_PROVIDER = "openai"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one or more model calls (all ints; ``requests`` = number of calls).

    >>> (Usage(input_tokens=10, output_tokens=2, requests=1) + Usage(input_tokens=5)).total_tokens
    17
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"Usage.{f.name} must be a non-negative int, got {value!r}")

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
        )

    @property
    def total_tokens(self) -> int:
        """Input + output tokens (cached and reasoning tokens are already inside them)."""
        return self.input_tokens + self.output_tokens

    @classmethod
    def from_usage_metadata(cls, md: Mapping[str, Any] | None) -> Usage:
        """Build from LangChain's ``AIMessage.usage_metadata`` (``None`` → zero usage).

        >>> u = Usage.from_usage_metadata({"input_tokens": 9, "output_tokens": 3,
        ...     "total_tokens": 12, "input_token_details": {"cache_read": 4}})
        >>> u.input_tokens, u.cached_input_tokens, u.output_tokens, u.requests
        (9, 4, 3, 1)
        """
        if md is None:
            return cls()
        input_details = md.get("input_token_details") or {}
        output_details = md.get("output_token_details") or {}
        return cls(
            input_tokens=int(md.get("input_tokens") or 0),
            cached_input_tokens=int(input_details.get("cache_read") or 0),
            output_tokens=int(md.get("output_tokens") or 0),
            reasoning_tokens=int(output_details.get("reasoning") or 0),
            requests=1,
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Usage:
        """Build from a state ``usage`` dict (keys of :data:`streamagent.state.USAGE_KEYS`;
        missing keys are 0, other keys are ignored)."""
        return cls(**{key: int(d.get(key) or 0) for key in USAGE_KEYS})

    def to_dict(self) -> UsageTotals:
        """The state ``usage`` dict: exactly the keys of :data:`streamagent.state.USAGE_KEYS`."""
        return UsageTotals(
            input_tokens=self.input_tokens,
            cached_input_tokens=self.cached_input_tokens,
            output_tokens=self.output_tokens,
            reasoning_tokens=self.reasoning_tokens,
            requests=self.requests,
        )


# --------------------------------------------------------------------------- prices
@dataclass(frozen=True, slots=True)
class _GenaiPrice:
    """A model found in genai-prices' bundled data."""

    provider: Any
    model_info: Any


_warned_unknown: set[str] = set()
_warned_lock = threading.Lock()


def _warn_unknown_once(model: str) -> None:
    with _warned_lock:
        if model in _warned_unknown:
            return
        _warned_unknown.add(model)
    logger.warning(
        "price of model %r is unknown: its cost is reported as None "
        "(add a ModelPrice for it to AgentConfig.prices)",
        model,
    )


def _strip_provider(model: str) -> tuple[str | None, str]:
    prefix, sep, name = model.strip().rpartition("/")
    return (prefix or None) if sep else None, name


def _lookup_genai(model: str) -> _GenaiPrice | None:
    from genai_prices import data_snapshot

    provider_hint, name = _strip_provider(model)
    snapshot = data_snapshot.get_snapshot()
    candidates: list[str | None] = [_DEFAULT_PROVIDER, None]
    if provider_hint is not None and provider_hint.lower() != _DEFAULT_PROVIDER:
        candidates.insert(0, provider_hint.lower())
    for provider_id in candidates:
        try:
            provider, info = snapshot.find_provider_model(name, None, provider_id, None)
        except LookupError:
            continue
        return _GenaiPrice(provider=provider, model_info=info)
    return None


def _override_cost(usage: Usage, price: ModelPrice) -> Decimal:
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    cached_rate = price.cached_input_usd_per_1m
    if cached_rate is None:
        cached_rate = price.input_usd_per_1m
    total = (
        Decimal(usage.input_tokens - cached) * Decimal(price.input_usd_per_1m)
        + Decimal(cached) * Decimal(cached_rate)
        + Decimal(usage.output_tokens) * Decimal(price.output_usd_per_1m)
    )
    return total / _PER_MILLION


def _genai_usage(input_tokens: int, cache_read_tokens: int, output_tokens: int) -> Any:
    from genai_prices import Usage as GenaiUsage

    return GenaiUsage(
        input_tokens=input_tokens, cache_read_tokens=cache_read_tokens, output_tokens=output_tokens
    )


def _exact_genai_cost(usage: Usage, price: _GenaiPrice) -> Decimal:
    """genai-prices' own calculation (its unit registry, tiers, time-bounded prices)."""
    genai_usage = _genai_usage(
        usage.input_tokens, min(usage.cached_input_tokens, usage.input_tokens), usage.output_tokens
    )
    calculation = price.model_info.calc_price(genai_usage, price.provider)
    return Decimal(calculation.total_price)


@dataclass(frozen=True, slots=True)
class _LinearRates:
    """USD per call (``fixed``: per-request fees) and per 1M uncached input, cached input and
    output tokens of one resolved price."""

    fixed: Decimal
    input: Decimal
    cached: Decimal
    output: Decimal


#: id(genai-prices ModelPrice) -> (that price, kept alive so the id stays its own; its rates)
_rates: dict[int, tuple[Any, _LinearRates | None]] = {}
_rates_lock = threading.Lock()


def _linear_rates(model_price: Any) -> _LinearRates | None:
    """Rates of a price without tiers (then the cost is affine in the three counts: genai-prices
    charges each unit's count times its rate, plus per-request fees), read off genai-prices
    itself by pricing no tokens and one million of each kind; ``None`` for tiered prices."""
    key = id(model_price)
    with _rates_lock:
        entry = _rates.get(key)
    if entry is not None and entry[0] is model_price:
        return entry[1]
    rates: _LinearRates | None = None
    if all(v is None or isinstance(v, Decimal) for v in vars(model_price).values()):
        million = 1_000_000

        def probe(inp: int, cache_read: int, out: int) -> Decimal:
            total = model_price.calc_price(_genai_usage(inp, cache_read, out))["total_price"]
            return Decimal(total)

        fixed = probe(0, 0, 0)
        rates = _LinearRates(
            fixed=fixed,
            input=probe(million, 0, 0) - fixed,
            cached=probe(million, million, 0) - fixed,
            output=probe(0, 0, million) - fixed,
        )
    with _rates_lock:
        _rates[key] = (model_price, rates)
    return rates


def _genai_cost(usage: Usage, price: _GenaiPrice) -> Decimal:
    """genai-prices' price of ``usage``: for untiered prices (nearly all) from rates read off
    genai-prices once (its full calculation costs ~60 µs per call, on every model call);
    ``tests/unit_tests/test_cost.py`` checks both agree on every model of its catalogue."""
    model_price = price.model_info.get_prices(datetime.now(tz=UTC))  # as calc_price resolves it
    rates = _linear_rates(model_price)
    if rates is None:
        return _exact_genai_cost(usage, price)
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    total = (
        (usage.input_tokens - cached) * rates.input
        + cached * rates.cached
        + usage.output_tokens * rates.output
    )
    return rates.fixed + total / _PER_MILLION


class CostCalculator:
    """Prices usage per model, caching the price lookup of each model name.

    ``prices`` maps model names (exact, with or without provider prefix) to overrides in USD
    per one million tokens; they win over genai-prices' data. Thread-safe.

    Example:
        >>> from streamagent.config import ModelPrice
        >>> calc = CostCalculator(prices={"my-llm": ModelPrice(
        ...     input_usd_per_1m=Decimal("1"), output_usd_per_1m=Decimal("2"))})
        >>> calc.cost(Usage(input_tokens=500_000, output_tokens=250_000), model="my-llm")
        Decimal('1')
    """

    def __init__(self, *, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._overrides = dict(prices or {})
        self._cache: dict[str, ModelPrice | _GenaiPrice | None] = {}
        self._lock = threading.Lock()

    def _price_for(self, model: str) -> ModelPrice | _GenaiPrice | None:
        with self._lock:
            if model in self._cache:
                return self._cache[model]
        _, name = _strip_provider(model)
        price: ModelPrice | _GenaiPrice | None = self._overrides.get(model)
        if price is None:
            price = self._overrides.get(name)
        if price is None:
            price = _lookup_genai(model)
        with self._lock:
            self._cache[model] = price
        return price

    def cost(self, usage: Usage, *, model: str) -> Decimal | None:
        """USD cost of ``usage`` on ``model``; ``None`` when the price is unknown."""
        price = self._price_for(model)
        if price is None:
            _warn_unknown_once(model)
            return None
        if isinstance(price, ModelPrice):
            return _override_cost(usage, price)
        return _genai_cost(usage, price)


_default_calculator = CostCalculator()


def calculate_cost(
    usage: Usage, *, model: str, prices: Mapping[str, ModelPrice] | None = None
) -> Decimal | None:
    """USD cost of ``usage`` on ``model`` (``prices`` overrides win); ``None`` if unknown.

    >>> calculate_cost(Usage(input_tokens=1_000_000, cached_input_tokens=1_000_000),
    ...                model="openai/gpt-4o")
    Decimal('1.25')
    """
    calculator = _default_calculator if not prices else CostCalculator(prices=prices)
    return calculator.cost(usage, model=model)
