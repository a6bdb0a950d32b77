"""LangSmith tracing helpers: what LangGraph does not send by itself.

Tracing needs nothing from streamagent: the standard ``LANGSMITH_TRACING=true``,
``LANGSMITH_API_KEY`` (and optionally ``LANGSMITH_ENDPOINT`` / ``LANGSMITH_PROJECT``) variables
turn on LangChain's tracer, and the run tree comes out as

``agent`` (the compiled graph) → ``prune`` / ``model`` / ``tools`` (one run per node and step)
→ ``ChatOpenAI`` (under ``model``, with token usage in its outputs) / one run per tool (under
``tools``, named after the tool). LangGraph puts ``thread_id`` and the node name in every run's
metadata; ChatOpenAI adds ``ls_model_name`` and ``ls_provider``.

What is missing is our own accounting: the exact cost (``genai-prices`` or the user's
:class:`~streamagent.config.ModelPrice` overrides, which LangSmith does not know) and the number
of attempts. :func:`annotate_current_run` adds them to the metadata of the run that is executing
(the ``model`` node's run), and does nothing when tracing is off.

Example:
    >>> from decimal import Decimal
    >>> from streamagent.accounting.cost import Usage
    >>> md = model_run_metadata(model="gpt-4o", usage=Usage(input_tokens=3, output_tokens=1,
    ...     requests=1), cost_usd=Decimal("0.0000175"), attempts=1)
    >>> md["cost_usd"], md["usage"]["input_tokens"]
    ('0.0000175', 3)
    >>> annotate_current_run(md)   # not inside a traced run: nothing to annotate
    False
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamagent.accounting.cost import Usage

__all__ = ["annotate_current_run", "model_run_metadata"]

logger = logging.getLogger(__name__)


def model_run_metadata(
    *, model: str, usage: Usage, cost_usd: Decimal | None, attempts: int
) -> dict[str, Any]:
    """Metadata describing one finished model call (pure; JSON-ready, cost as exact string).

    ``cost_usd`` is ``None`` when the model's price is unknown.
    """
    return {
        "model": model,
        "usage": dict(usage.to_dict()),
        "cost_usd": None if cost_usd is None else str(cost_usd),
        "attempts": attempts,
    }


def annotate_current_run(metadata: Mapping[str, Any], *, tags: Sequence[str] = ()) -> bool:
    """Add ``metadata`` and ``tags`` to the LangSmith run of the calling runnable.

    Call it from inside a node (a runnable invoked with its config): the values are sent with
    the run when it ends. Returns ``False`` (and does nothing) when no run is being traced.
    Never raises: tracing must not break an agent run.
    """
    try:
        from langsmith.run_helpers import get_current_run_tree

        run = get_current_run_tree()
        if run is None:
            return False
        run.metadata.update(metadata)
        if tags:
            current = list(run.tags or [])
            run.tags = current + [t for t in tags if t not in current]
    except Exception:
        logger.exception("could not annotate the current LangSmith run")
        return False
    return True
