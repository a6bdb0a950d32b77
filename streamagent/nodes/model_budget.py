"""The model node's budgets, checked *before* a call: steps per run, tokens and USD per thread.

:meth:`ModelBudget.check` raises before a call that would exceed ``max_steps``,
``max_total_tokens`` or ``max_cost_usd`` and returns the output tokens the token budget leaves
for the call (reserved from the budget, so the thread never ends above it);
:func:`output_cap` turns that room into the call's ``max_tokens`` when it is below the call's
own limit. Pure: the thread's state and the messages in, a number or an error out.

Example:
    >>> from langchain_core.messages import HumanMessage
    >>> from streamagent.config import AgentConfig, ModelConfig
    >>> budget = ModelBudget(AgentConfig(model=ModelConfig(api_key="k"), max_total_tokens=1000))
    >>> state = {"usage": {"input_tokens": 900, "output_tokens": 50}}
    >>> room = budget.check(state, [HumanMessage("hi")])
    >>> 0 < room < 50
    True
    >>> output_cap(room, 4096) == room, output_cap(room, 8)  # below the limit: the cap
    (True, None)
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import BaseMessage

from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.accounting.tokens import TokenCounter
from streamagent.config import AgentConfig
from streamagent.errors import BudgetExceededError, StepLimitExceededError, StreamAgentError
from streamagent.nodes.model_accounting import run_steps
from streamagent.observability.observer import AgentObserver, NullObserver

__all__ = ["ModelBudget", "output_cap"]

logger = logging.getLogger("streamagent.nodes.model")  # the node's records keep their logger


def output_cap(room: int | None, limit: Any) -> int | None:
    """``room`` (what the token budget leaves for output) when it is below the call's own
    output ``limit`` (an ``int``; anything else is no limit), ``None`` otherwise."""
    if room is None:
        return None
    if isinstance(limit, int) and not isinstance(limit, bool) and limit <= room:
        return None
    return room


class ModelBudget:
    """The budgets of ``config`` (``max_steps``, ``max_total_tokens``, ``max_cost_usd``).

    ``counter`` estimates a call's input tokens and ``costs`` prices them (defaults: built
    from ``config``); ``observer`` hears a refusal from :meth:`checked`.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        counter: TokenCounter | None = None,
        costs: CostCalculator | None = None,
        observer: AgentObserver | None = None,
    ) -> None:
        self.config = config
        self.model_name = config.model.model
        self.counter = counter or TokenCounter(self.model_name)
        self.costs = costs or CostCalculator(prices=config.prices)
        self.observer: AgentObserver = observer or NullObserver()

    def check(
        self, state: dict[str, Any], messages: list[BaseMessage], *, model: str | None = None
    ) -> int | None:
        """Raise before a call that would exceed ``max_steps``, tokens or USD budgets.

        Returns the output tokens ``max_total_tokens`` leaves for this call (they are reserved
        from the budget: the call's output is capped to them, so the thread never ends above
        it), ``None`` without a token budget. A refusal of a run's first call (the
        user's new message) marks the error ``rejects_input``: the message leaves the thread.
        """
        cfg = self.config
        steps = run_steps(state)
        if steps >= cfg.max_steps:
            raise StepLimitExceededError(
                f"the agent made {steps} model calls in this run without a final answer "
                f"(max_steps={cfg.max_steps}); send a new message to continue"
            )
        if cfg.max_total_tokens is None and cfg.max_cost_usd is None:
            return None
        used = Usage.from_dict(state.get("usage") or {})
        estimate = self.counter.count_messages(messages)
        cap: int | None = None
        if cfg.max_total_tokens is not None:
            room = cfg.max_total_tokens - used.total_tokens - estimate
            if room < 1:
                error = BudgetExceededError(
                    f"token budget reached: this thread used {used.total_tokens} tokens and the "
                    f"next call needs ~{estimate} more plus its output "
                    f"(max_total_tokens={cfg.max_total_tokens})"
                )
                error.rejects_input = steps == 0
                raise error
            cap = room
        if cfg.max_cost_usd is not None:
            spent = state.get("cost_usd")
            next_cost = self.costs.cost(
                Usage(input_tokens=estimate), model=model or self.model_name
            )
            if spent is None or next_cost is None:
                if used.requests:
                    logger.warning(
                        "max_cost_usd cannot be enforced: price of %r unknown", self.model_name
                    )
                return cap
            if spent + next_cost > cfg.max_cost_usd:
                error = BudgetExceededError(
                    f"cost budget reached: this thread cost ${spent} and the next call would add "
                    f"~${next_cost:.6f} (max_cost_usd=${cfg.max_cost_usd})"
                )
                error.rejects_input = steps == 0
                raise error
        return cap

    def checked(
        self, state: dict[str, Any], messages: list[BaseMessage], *, model: str
    ) -> int | None:
        """:meth:`check`, a refusal reported to the observer (``on_error``) before it raises."""
        try:
            return self.check(state, messages, model=model)
        except StreamAgentError as error:
            self.observer.on_error(error)
            raise
