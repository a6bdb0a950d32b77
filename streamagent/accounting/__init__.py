"""Tokens, cost and context size: what a run uses and what it costs.

- :mod:`~streamagent.accounting.tokens`: tiktoken counts that work offline, with the
  encodings of :mod:`~streamagent.accounting.encodings` (model → encoding, built once from
  :mod:`~streamagent.accounting.offline_bpe`);
- :mod:`~streamagent.accounting.cost`: :class:`Usage` and the price of a call;
- :mod:`~streamagent.accounting.usage`: usage of the other chat models of a graph;
- :mod:`~streamagent.accounting.pruning`: token-aware trimming of the context.

Example:
    >>> count_tokens("hello world")
    2
"""

from streamagent.accounting.cost import CostCalculator, Usage, calculate_cost
from streamagent.accounting.pruning import PruneResult, prune_messages, shrink_text
from streamagent.accounting.tokens import (
    TokenCounter,
    count_message_tokens,
    count_tokens,
    get_token_counter,
)

__all__ = [
    "CostCalculator",
    "PruneResult",
    "TokenCounter",
    "Usage",
    "calculate_cost",
    "count_message_tokens",
    "count_tokens",
    "get_token_counter",
    "prune_messages",
    "shrink_text",
]
