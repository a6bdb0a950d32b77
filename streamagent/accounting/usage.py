"""Usage and cost of *every* chat model in a streamed graph, per agent.

streamagent's own model nodes report usage and cost in their state updates. A composed graph
also runs other chat models — LangChain's ``create_agent``, a plain ``ChatOpenAI`` node, a
summariser — whose calls left the ``done`` chunk at ``requests=0`` and ``$0``. The
:class:`UsageTracker` is a callback handler :func:`streamagent.astream_chunks` adds to the run:
it counts each chat-model call that is *not* streamagent's (those carry a ``streamagent:<name>``
tag) from the reply's ``usage_metadata``, prices it by the reply's model name, and files it
under the agent that made it (the graph node at the top of its namespace). A call without
``usage_metadata`` or with an unknown price makes the cost unknown (``None``), never $0.

Example:
    >>> from langchain_core.messages import AIMessage
    >>> from langchain_core.outputs import ChatGeneration, LLMResult
    >>> from uuid import uuid4
    >>> tracker = UsageTracker()
    >>> run = uuid4()
    >>> tracker.on_chat_model_start({}, [[]], run_id=run,
    ...     metadata={"langgraph_checkpoint_ns": "writer:1|model:2"})
    >>> reply = AIMessage("hi", usage_metadata={"input_tokens": 5, "output_tokens": 1,
    ...     "total_tokens": 6}, response_metadata={"model_name": "gpt-4o"})
    >>> tracker.on_llm_end(LLMResult(generations=[[ChatGeneration(message=reply)]]), run_id=run)
    >>> tracker.by_agent["writer"].usage.requests, tracker.by_agent["writer"].cost_usd
    (1, Decimal('0.0000225'))
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from streamagent.accounting.cost import CostCalculator, Usage

__all__ = [
    "AgentUsage",
    "UsageTracker",
    "agent_of_metadata",
    "without_handlers",
    "without_tracker",
]

_OWN_TAG = "streamagent:"
_NS_SEP = "|"


@dataclass
class AgentUsage:
    """One agent's usage in a run; ``cost_usd`` is ``None`` once any call's cost is unknown."""

    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal | None = field(default_factory=Decimal)

    def add(self, usage: Usage, cost: Decimal | None) -> None:
        """Count one call."""
        self.usage = self.usage + usage
        self.cost_usd = None if cost is None or self.cost_usd is None else self.cost_usd + cost

    def to_dict(self) -> dict[str, Any]:
        """``{"usage": {...}, "cost_usd": Decimal | None}``."""
        return {"usage": dict(self.usage.to_dict()), "cost_usd": self.cost_usd}


def agent_of_metadata(metadata: dict[str, Any] | None) -> str:
    """The agent a call belongs to: the top node of its namespace, else its node."""
    metadata = metadata or {}
    checkpoint_ns = str(metadata.get("langgraph_checkpoint_ns") or "")
    if checkpoint_ns:
        return checkpoint_ns.split(_NS_SEP, 1)[0].split(":", 1)[0]
    return str(metadata.get("lc_agent_name") or metadata.get("langgraph_node") or "model")


def without_handlers(callbacks: Any, *classes: type | None) -> Any:
    """``callbacks`` without the handlers of ``classes`` (``None`` entries are skipped): a
    manager copied once, or the same object when there is nothing to remove."""
    wanted = tuple(c for c in classes if c is not None)
    if not wanted or not isinstance(callbacks, BaseCallbackManager):
        return callbacks
    unwanted = [h for h in callbacks.handlers if isinstance(h, wanted)]
    if not unwanted:
        return callbacks
    trimmed = callbacks.copy()
    for handler in unwanted:
        trimmed.remove_handler(handler)
    return trimmed


def without_tracker(callbacks: Any) -> Any:
    """``callbacks`` without the run's tracker, for streamagent's own model calls.

    The tracker ignores those calls anyway, but LangChain would still dispatch every token to
    it (~5 µs a token on the fast path); a copy of the manager per call is far cheaper.
    """
    return without_handlers(callbacks, UsageTracker)


class UsageTracker(BaseCallbackHandler):
    """Counts the chat-model calls of a run that are not streamagent's own (thread-safe)."""

    run_inline = True  # called in the model's task: no executor hop per event

    def __init__(self, *, costs: CostCalculator | None = None) -> None:
        self._costs = costs or CostCalculator()
        self._lock = threading.Lock()
        self._runs: dict[UUID, str] = {}
        self.by_agent: dict[str, AgentUsage] = {}

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Note the call unless it is a streamagent model node's (counted from its state)."""
        if any(t.startswith(_OWN_TAG) for t in tags or ()):
            return
        with self._lock:
            self._runs[run_id] = agent_of_metadata(metadata)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Count a finished call of a noted run."""
        with self._lock:
            agent = self._runs.pop(run_id, None)
        if agent is None:
            return
        usage, cost = self._priced(response)
        with self._lock:
            self.by_agent.setdefault(agent, AgentUsage()).add(usage, cost)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """A failed call is not counted."""
        with self._lock:
            self._runs.pop(run_id, None)

    def _priced(self, response: LLMResult) -> tuple[Usage, Decimal | None]:
        generation = response.generations[0][0] if response.generations else None
        message = generation.message if isinstance(generation, ChatGeneration) else None
        metadata = getattr(message, "usage_metadata", None)
        if message is None or metadata is None:
            return Usage(requests=1), None  # the call happened; its tokens are unknown
        usage = Usage.from_usage_metadata(metadata)
        model = message.response_metadata.get("model_name") or (response.llm_output or {}).get(
            "model_name"
        )
        cost = self._costs.cost(usage, model=str(model)) if model else None
        return usage, cost

    def totals(self) -> AgentUsage:
        """Everything this tracker counted."""
        total = AgentUsage()
        with self._lock:
            for item in self.by_agent.values():
                total.add(item.usage, item.cost_usd)
        return total
