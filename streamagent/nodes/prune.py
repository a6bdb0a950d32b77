"""The prune node: keep the model's input inside its token budget.

Budget = context window - max output tokens - tool-schema tokens - a safety margin, further
capped by ``PruningConfig.max_tokens``. The maths lives in :mod:`streamagent.accounting.pruning`
(system messages and the latest user turn always kept, oldest turns dropped first, tool-call
pairs never split, oversized tool outputs shrunk first).

``policy="view"`` writes only ``context_view`` (which messages the model sees); the thread
keeps everything. ``policy="state"`` also removes dropped messages from the thread with
``RemoveMessage`` and stores shrunk tool outputs, enforcing memory limits.

The node also validates the thread and resets ``run_steps`` when a new run starts.

The graph runs this node only when it has something to do: :meth:`PruneNode.route` (the
conditional edge from ``START`` and from ``tools``) sends the state straight to the model when
the thread is valid, already fits (nothing to drop or shrink) and no earlier view is in force —
then this node's update would change nothing (the model node counts a new run's steps from
zero by itself). A LangGraph step costs ~0.4 ms, on the way to every first token. Any doubt
(an invalid thread, an unloaded tokenizer, a stale view) routes through the node.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from streamagent.accounting.pruning import PruneResult, prune_messages, shrink_text
from streamagent.accounting.tokens import TokenCounter, aget_encoding, encoding_ready
from streamagent.config import AgentConfig
from streamagent.errors import ContextTooLongError, InvalidInputError, StreamAgentError
from streamagent.observability.observer import AgentObserver, NullObserver

__all__ = ["PRUNE_NODE", "PruneNode", "validate_thread"]

logger = logging.getLogger(__name__)

_KNOWN = (HumanMessage, AIMessage, SystemMessage, ToolMessage)
#: Node names :meth:`PruneNode.route` chooses between.
PRUNE_NODE = "prune"
_MODEL_NODE = "model"


def validate_thread(messages: Sequence[BaseMessage]) -> None:
    """Raise :class:`InvalidInputError` for an empty thread or unsupported message types."""
    if not messages:
        raise InvalidInputError("the conversation is empty: send at least one user message")
    for message in messages:
        if not isinstance(message, _KNOWN):
            raise InvalidInputError(
                f"unsupported message type {type(message).__name__}: use system, user, "
                "assistant or tool messages"
            )


class PruneNode:
    """Callable node (sync and async) computing the model's view of the thread."""

    def __init__(
        self,
        *,
        tools: Sequence[BaseTool],
        config: AgentConfig,
        observer: AgentObserver | None = None,
    ) -> None:
        self.config = config
        self.counter = TokenCounter(config.model.model)
        self.observer: AgentObserver = observer or NullObserver()
        self._tools = list(tools)
        self._budget: int | None = None

    def budget_tokens(self) -> int:
        """Input budget for the model (computed once; tool schemas are fixed per graph)."""
        if self._budget is None:
            cfg = self.config
            window = cfg.model.resolved_context_window()
            tools_tokens = self.counter.tools_tokens(self._tools) if self._tools else 0
            budget = window - cfg.model.max_tokens - tools_tokens - cfg.pruning.safety_margin_tokens
            if cfg.pruning.max_tokens is not None:
                budget = min(budget, cfg.pruning.max_tokens)
            self._budget = max(budget, 1)
        return self._budget

    def _truncate(self, text: str, max_tokens: int) -> str:
        return shrink_text(text, max_tokens, model=self.config.model.model)

    def _prune(self, messages: list[BaseMessage]) -> PruneResult:
        pruning = self.config.pruning
        return prune_messages(
            messages,
            max_tokens=self.budget_tokens(),
            count_tokens=self.counter.message_tokens,
            max_messages=pruning.max_messages,
            max_tool_output_tokens=pruning.max_tool_output_tokens,
            truncate_text=self._truncate,
        )

    def route(self, state: dict[str, Any]) -> str:
        """``"model"`` when this node would change nothing (see the module docstring), else
        ``"prune"``. Pure and non-blocking: it never raises and never loads a tokenizer."""
        view = state.get("context_view")
        if view and (view.get("kept_ids") is not None or view.get("shrunk")):
            return PRUNE_NODE  # an earlier view is in force: the node replaces it
        if not encoding_ready(self.counter.encoding_name):
            return PRUNE_NODE  # the node loads it off the event loop
        messages: list[BaseMessage] = list(state.get("messages") or [])
        try:
            validate_thread(messages)
            result = self._prune(messages)
        except StreamAgentError:
            return PRUNE_NODE  # the node raises it, with its bookkeeping
        return PRUNE_NODE if result.removed or result.shrunk_ids else _MODEL_NODE

    def invoke(self, state: dict[str, Any], config: RunnableConfig | None = None) -> dict[str, Any]:
        messages: list[BaseMessage] = list(state.get("messages") or [])
        validate_thread(messages)
        pruning = self.config.pruning
        try:
            result = self._prune(messages)
        except ContextTooLongError as error:
            # Before the first model call of a run the oversized part is the user's new input.
            error.rejects_input = not isinstance(messages[-1], ToolMessage)
            self.observer.on_error(error)
            raise
        update: dict[str, Any] = {}
        if not isinstance(messages[-1], ToolMessage):
            update["run_steps"] = 0  # a new run starts with a user message
        removed_tokens = result.tokens_before - result.tokens_after
        if result.removed or result.shrunk_ids:
            self.observer.on_prune(
                removed_messages=len(result.removed), removed_tokens=removed_tokens
            )
            logger.debug(
                "pruned %d messages, shrank %d tool outputs (%d -> %d tokens)",
                len(result.removed),
                len(result.shrunk_ids),
                result.tokens_before,
                result.tokens_after,
            )
        shrunk = {
            m.id: str(m.content)
            for m in result.messages
            if m.id is not None and m.id in set(result.shrunk_ids)
        }
        if pruning.policy == "state":
            removals: list[BaseMessage] = [RemoveMessage(id=m.id) for m in result.removed if m.id]
            replacements = [m for m in result.messages if m.id in shrunk]
            if removals or replacements:
                update["messages"] = removals + replacements
            update["context_view"] = {"kept_ids": None, "shrunk": {}}
        else:
            dropped = bool(result.removed)
            update["context_view"] = {
                "kept_ids": [m.id for m in result.messages] if dropped else None,
                "shrunk": shrunk,
            }
        return update

    async def ainvoke(
        self, state: dict[str, Any], config: RunnableConfig | None = None
    ) -> dict[str, Any]:
        # The first use of an encoding builds it: off the event loop, so other streams go on.
        await aget_encoding(self.counter.encoding_name)
        return self.invoke(state, config)
