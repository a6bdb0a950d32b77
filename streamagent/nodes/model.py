"""The model node: stream one chat completion, retry it, account usage and cost.

The node is the single owner of retries (the SDK's are off): retryable failures are retried
with backoff; a failure after tokens were streamed is announced with a ``retry`` custom
stream event so consumers discard that partial output. A stream that ends without a
``finish_reason`` is an error, never a silent success. Budgets (steps, tokens, USD) are checked
*before* the call.

:class:`ModelNode` wires small collaborators, each testable alone, and keeps only the I/O:
streaming one attempt (sync and async) and handing its tokens to the run's sink.

- :mod:`~streamagent.nodes.model_input`: the messages the model sees;
- :mod:`~streamagent.nodes.model_client`: which chat model a run calls, with which config;
- :mod:`~streamagent.nodes.model_budget`: the step, token and cost budgets;
- :mod:`~streamagent.nodes.model_attempts`: the retry loop and its events and error reports;
- :mod:`~streamagent.nodes.model_reply`: the checked reply from the streamed chunks;
- :mod:`~streamagent.nodes.model_accounting`: usage, cost and run steps of a call.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool

from streamagent._upstream import fast_path_available
from streamagent._upstream import langchain_core_private as lcp
from streamagent.accounting.cost import CostCalculator
from streamagent.accounting.tokens import TokenCounter
from streamagent.config import AgentConfig
from streamagent.llm.chunk_merge import CompactChunks
from streamagent.llm.retry import RetryPolicy
from streamagent.nodes._v3 import protocol_streaming
from streamagent.nodes.model_accounting import ModelAccounting, report_call, run_steps
from streamagent.nodes.model_attempts import Attempt, ModelAttempts, TokenWatch
from streamagent.nodes.model_budget import ModelBudget, output_cap
from streamagent.nodes.model_client import ChatRunnable, ModelClient
from streamagent.nodes.model_input import model_input
from streamagent.nodes.model_reply import invoked_reply, streamed_reply
from streamagent.observability.observer import AgentObserver, NullObserver
from streamagent.streaming.sink import graph_namespace, sink_of

__all__ = ["ModelNode", "run_steps"]  # run_steps: moved to model_accounting, still importable


class ModelNode:
    """Callable node (sync ``invoke`` / async ``ainvoke``) around a chat model."""

    def __init__(
        self,
        *,
        llm: BaseChatModel | None,
        tools: Sequence[BaseTool],
        config: AgentConfig,
        name: str,
        costs: CostCalculator | None = None,
        observer: AgentObserver | None = None,
    ) -> None:
        tools = list(tools)
        self.config = config
        self.name = name
        self.model_name = config.model.model
        self.policy = RetryPolicy(config.retry)
        self.costs = costs or CostCalculator(prices=config.prices)
        self.counter = TokenCounter(self.model_name)
        self.observer: AgentObserver = observer or NullObserver()
        self.client = ModelClient(llm=llm, tools=tools, settings=config.model, name=name)
        self.budget = ModelBudget(
            config, counter=self.counter, costs=self.costs, observer=self.observer
        )
        self.attempts = ModelAttempts(
            self.policy, name=name, model_name=self.model_name, observer=self.observer
        )
        self.accounting = ModelAccounting(
            name=name,
            model_name=self.model_name,
            counter=self.counter,
            costs=self.costs,
            tools=tools,
        )

    def _fast_path(self) -> bool:
        """Whether this node hands its tokens to ``astream_chunks``' sink (the fast path)."""
        return self.config.model.fast_path and fast_path_available()

    # ------------------------------------------------------------------ the collaborators' API
    def runnable(self, config: RunnableConfig | None) -> ChatRunnable:
        """The chat model to call: the one given, or ChatOpenAI built from the configuration.

        Without a fixed model, a run's ``configurable`` may override ``model``, ``base_url``,
        ``temperature`` and ``max_tokens`` (LangGraph Server / Studio assistants use this).
        """
        return self.client.runnable(config)

    def model_for(self, config: RunnableConfig | None) -> str:
        """The model name a run calls (a run's ``configurable`` override, else the node's)."""
        return self.client.model_for(config)

    def model_input(self, state: dict[str, Any]) -> list[BaseMessage]:
        """The messages the model sees: the prune node's view of the thread + system prompt."""
        return model_input(state, system_prompt=self.config.system_prompt)

    def check_budgets(
        self, state: dict[str, Any], messages: list[BaseMessage], *, model: str | None = None
    ) -> int | None:
        """Raise before a call that would exceed a budget; the output tokens it leaves
        (see :meth:`ModelBudget.check <streamagent.nodes.model_budget.ModelBudget.check>`)."""
        return self.budget.check(state, messages, model=model)

    def state_update(
        self,
        state: dict[str, Any],
        message: AIMessage,
        messages: list[BaseMessage],
        attempt: Attempt,
        *,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Usage/cost bookkeeping for one successful call, reported to the observer."""
        model = model or self.model_name
        settled = self.accounting.settle(
            state, message, messages, attempts=attempt.number, model=model
        )
        report_call(
            self.observer,
            settled,
            message,
            model=model,
            attempts=attempt.number,
            started=attempt.started,
            first_token_at=attempt.first_token_at,
        )
        return settled.update

    def _request(
        self, state: dict[str, Any], config: RunnableConfig
    ) -> tuple[list[BaseMessage], str, int | None]:
        """(messages, model, output cap) of the node's call; raises when a budget refuses it."""
        messages = model_input(state, system_prompt=self.config.system_prompt)
        model = self.client.model_for(config)
        room = self.budget.checked(state, messages, model=model)
        cap = None if room is None else output_cap(room, self.client.output_limit(config))
        return messages, model, cap

    # ------------------------------------------------------------------ async shell
    async def ainvoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        messages, model, cap = self._request(state, config)
        message, attempt = await self.acall(messages, config, model=model, max_output_tokens=cap)
        return self.state_update(state, message, messages, attempt, model=model)

    async def acall(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        *,
        model: str,
        runnable: ChatRunnable | None = None,
        max_attempts: int | None = None,
        max_output_tokens: int | None = None,
    ) -> tuple[AIMessage, Attempt]:
        """One model call with this node's retries (``max_attempts`` overrides the policy's):
        the final message and its bookkeeping. ``runnable`` replaces :meth:`runnable`'s model
        (middleware that changed the request's model, tools or settings);
        ``max_output_tokens`` is what the token budget leaves for the reply."""
        sink = sink_of(config) if self._fast_path() else None
        attempt = Attempt(model=model, sink=sink, max_output_tokens=max_output_tokens)
        if attempt.sink is not None:
            attempt.namespace = graph_namespace(config.get("metadata") or {})
        once = functools.partial(self._astream_once, messages, config, runnable=runnable)
        message = await self.attempts.arun(once, attempt, max_attempts)
        return message, attempt

    async def _astream_once(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: Attempt,
        runnable: ChatRunnable | None = None,
    ) -> AIMessage:
        sink = attempt.sink
        if sink is None and lcp.wants_protocol_events(config.get("callbacks")):
            return await self._ainvoke_protocol(messages, config, attempt, runnable)
        chunks = CompactChunks()  # a long reply keeps its text, not every chunk object
        model, llm_config, kwargs = self.client.prepared(
            config, runnable, nostream=sink is not None, max_output_tokens=attempt.max_output_tokens
        )
        meta = llm_config.get("metadata")
        note_chunk = attempt.note_chunk
        async for chunk in model.astream(messages, llm_config, **kwargs):
            if isinstance(chunk, AIMessageChunk):
                note_chunk(chunk)
                chunks.append(chunk)
                if sink is not None:
                    sink.put((attempt.namespace, "messages", (chunk, meta)))
        return streamed_reply(chunks)

    async def _ainvoke_protocol(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: Attempt,
        runnable: ChatRunnable | None = None,
    ) -> AIMessage:
        """One model call for a run that consumes protocol events (LangGraph's v3 stream).

        LangChain emits protocol events (``on_stream_event``) from ``ainvoke``, not from
        ``astream``: the model is invoked (it still streams underneath, through the same
        transport), and a watcher marks the attempt as having emitted tokens.
        """
        model, llm_config, kwargs = self.client.prepared(
            config, runnable, max_output_tokens=attempt.max_output_tokens
        )
        watch = _watch_tokens(llm_config, attempt)
        reply = await model.ainvoke(messages, llm_config, **kwargs)
        return invoked_reply(reply, streamed_chunks=watch.deltas)

    # ------------------------------------------------------------------ sync shell
    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        messages, model, cap = self._request(state, config)
        message, attempt = self.call(messages, config, model=model, max_output_tokens=cap)
        return self.state_update(state, message, messages, attempt, model=model)

    def call(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        *,
        model: str,
        runnable: ChatRunnable | None = None,
        max_attempts: int | None = None,
        max_output_tokens: int | None = None,
    ) -> tuple[AIMessage, Attempt]:
        """Synchronous twin of :meth:`acall` (no sink: sync runs stream through LangGraph)."""
        attempt = Attempt(model=model, max_output_tokens=max_output_tokens)
        once = functools.partial(self._stream_once, messages, config, runnable=runnable)
        return self.attempts.run(once, attempt, max_attempts), attempt

    def _stream_once(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: Attempt,
        runnable: ChatRunnable | None = None,
    ) -> AIMessage:
        model, llm_config, kwargs = self.client.prepared(
            config, runnable, max_output_tokens=attempt.max_output_tokens
        )
        if protocol_streaming(llm_config):  # stream_events v3: as _ainvoke_protocol
            watch = _watch_tokens(llm_config, attempt)
            reply = model.invoke(messages, llm_config, **kwargs)
            return invoked_reply(reply, streamed_chunks=watch.deltas)
        chunks = CompactChunks()  # a long reply keeps its text, not every chunk object
        note_chunk = attempt.note_chunk
        for chunk in model.stream(messages, llm_config, **kwargs):
            if isinstance(chunk, AIMessageChunk):
                note_chunk(chunk)
                chunks.append(chunk)
        return streamed_reply(chunks)


def _watch_tokens(llm_config: RunnableConfig, attempt: Attempt) -> TokenWatch:
    """A :class:`TokenWatch` on a copy of the call's callback manager: it marks ``attempt`` as
    having emitted tokens at the first protocol content delta, and counts them."""
    watch = TokenWatch(attempt)
    callbacks = llm_config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        callbacks = callbacks.copy()
        callbacks.add_handler(watch, inherit=False)
        llm_config["callbacks"] = callbacks
    return watch
