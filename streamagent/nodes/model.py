"""The model node: stream one chat completion, retry it, account usage and cost.

The node is the single owner of retries (the SDK's are off): retryable failures are retried
with backoff; a failure after tokens were streamed is announced with a ``retry`` custom
stream event so consumers discard that partial output. A stream that ends without a
``finish_reason`` is an error, never a silent success. Budgets (steps, tokens, USD) are checked
*before* the call.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, cast

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager
from langchain_core.exceptions import OutputParserException
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.config import get_stream_writer
from langgraph.constants import TAG_NOSTREAM
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from streamagent._upstream import fast_path_available, langgraph_private
from streamagent._upstream import langchain_core_private as lcp
from streamagent.accounting.cost import CostCalculator, Usage
from streamagent.accounting.tokens import TokenCounter
from streamagent.accounting.usage import without_tracker
from streamagent.config import AgentConfig
from streamagent.errors import (
    BudgetExceededError,
    StepLimitExceededError,
    StreamAgentError,
    StreamBrokenError,
)
from streamagent.llm import create_chat_model
from streamagent.llm.chunk_merge import CompactChunks
from streamagent.llm.responses import responses_finish_reason
from streamagent.llm.retry import RetryPolicy, classify_error
from streamagent.nodes._quirks import (
    dedupe_tool_names,
    estimated_usage,
    infer_finish_reason,
    stream_error,
)
from streamagent.nodes._v3 import protocol_streaming
from streamagent.observability.observer import AgentObserver, NullObserver
from streamagent.observability.tracing import annotate_current_run, model_run_metadata
from streamagent.streaming.protocol import AGENT_METADATA_KEY, EVENT_KEY, RETRY_EVENT
from streamagent.streaming.sink import TokenSink, graph_namespace, sink_of

__all__ = ["ModelNode"]

logger = logging.getLogger(__name__)

_OVERRIDABLE = ("model", "base_url", "temperature", "max_tokens")


@dataclass
class _Attempt:
    """Per-invocation bookkeeping (never shared between concurrent runs)."""

    emitted: bool = False
    started: float = field(default_factory=time.perf_counter)
    first_token_at: float | None = None
    number: int = 0
    model: str = ""
    # where astream_chunks reads this run directly (see streamagent.streaming.sink)
    sink: TokenSink | None = None
    namespace: tuple[str, ...] = ()
    # output-token cap of this call (what the token budget leaves), None = the configured one
    max_output_tokens: int | None = None

    def call_kwargs(self, bound: Mapping[str, Any]) -> Mapping[str, Any]:
        """The model call's keyword arguments: the bound ones plus the budget's cap."""
        if self.max_output_tokens is None:
            return bound
        return {**bound, "max_tokens": self.max_output_tokens}


def _without_messages_mode(callbacks: Any) -> Any:
    """The model call's callbacks without LangGraph's ``messages``-mode handler.

    With the ``nostream`` tag that handler already ignores the call, but LangChain still awaits
    it for every token (an event dispatch per chunk, ~10 % of a paced token's CPU); user
    callbacks and tracers stay.
    """
    handler_class = langgraph_private.StreamMessagesHandler
    if handler_class is None or not isinstance(callbacks, BaseCallbackManager):
        return callbacks
    unwanted = [h for h in callbacks.handlers if isinstance(h, handler_class)]
    if not unwanted:
        return callbacks
    trimmed = callbacks.copy()
    for handler in unwanted:
        trimmed.remove_handler(handler)
    return trimmed


def _unbind(
    runnable: Runnable[LanguageModelInput, BaseMessage],
) -> tuple[Runnable[LanguageModelInput, BaseMessage], Mapping[str, Any]]:
    """``llm.bind_tools(...)`` as (llm, its bound kwargs): the same call without
    ``RunnableBinding``'s two config merges per call (a binding with its own config is kept)."""
    if (
        isinstance(runnable, RunnableBinding)
        and type(runnable).astream is RunnableBinding.astream  # not a binding with its own logic
        and type(runnable).stream is RunnableBinding.stream
        and not runnable.config
        and not runnable.config_factories
    ):
        return runnable.bound, runnable.kwargs
    return runnable, {}


def run_steps(state: dict[str, Any]) -> int:
    """Model calls so far in this run: a run starts with a new (non-tool) message, so zero then
    (the prune node also resets the counter, but the graph skips it when it has nothing to do)."""
    messages = state.get("messages") or []
    if not messages or not isinstance(messages[-1], ToolMessage):
        return 0
    return int(state.get("run_steps") or 0)


def _final_message(chunks: list[AIMessageChunk]) -> AIMessage:
    """Merge streamed chunks into one message; a stream without finish_reason is broken."""
    if not chunks:
        raise StreamBrokenError("the model stream ended before sending anything")
    chunks = dedupe_tool_names(chunks)  # llama.cpp repeats the name in every delta
    merged = chunks[0] if len(chunks) == 1 else add_ai_message_chunks(chunks[0], *chunks[1:])
    responses_finish_reason(merged)  # the Responses API reports a status instead
    infer_finish_reason(merged)  # no finish_reason, but a usage chunk ended the reply
    if not merged.response_metadata.get("finish_reason"):
        raise StreamBrokenError(
            "the model stream ended without a finish_reason (truncated stream, no [DONE])"
        )
    data = merged.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"})
    data["tool_calls"], invalid = _strict_tool_calls(merged)
    data["invalid_tool_calls"] = [*data.get("invalid_tool_calls", []), *invalid]
    return AIMessage(**data)


def _final_invoked(message: BaseMessage) -> AIMessage:
    """An invoked (not streamed) reply, checked as :func:`_final_message` checks streams."""
    if not isinstance(message, AIMessage):
        raise StreamBrokenError(f"the model returned a {type(message).__name__}, not a reply")
    content = message.content
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in content
    ):  # protocol streaming returns text blocks: stored as the streamed path stores them
        message.content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    responses_finish_reason(message)  # the Responses API reports a status instead
    if not message.response_metadata.get("finish_reason"):
        raise StreamBrokenError(
            "the model stream ended without a finish_reason (truncated stream, no [DONE])"
        )
    return message


class _TokenWatch(BaseCallbackHandler):
    """Marks an attempt as having emitted tokens when protocol content deltas stream."""

    run_inline = True  # a few attribute writes: no executor hop per event

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt
        self.deltas = 0

    def on_stream_event(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, Mapping) and event.get("event") == "content-block-delta":
            self.deltas += 1
            if not self.attempt.emitted:
                self.attempt.emitted = True
                self.attempt.first_token_at = time.perf_counter()


def _invoked(reply: BaseMessage, attempt: _Attempt) -> AIMessage:
    """The reply of an invoked (v3, protocol-streamed) call, checked like a streamed one."""
    attempt.emitted = True  # its tokens went out through LangGraph as they came
    if not isinstance(reply, AIMessage):
        raise StreamBrokenError(f"the model returned {type(reply).__name__}, not an AI message")
    responses_finish_reason(reply)
    if not reply.response_metadata.get("finish_reason"):
        raise StreamBrokenError("the model stream ended without a finish_reason")
    message = AIMessage(**reply.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"}))
    message.response_metadata["streamed_chunks"] = 0
    return message


def _strict_tool_calls(
    merged: AIMessageChunk,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse streamed tool-call arguments strictly.

    ``AIMessageChunk`` parses arguments with a *partial* JSON parser, so truncated arguments
    such as ``{"a": 1, "b": `` silently become ``{"a": 1}`` -- a different call than the model
    made. Here each call's complete argument string must be one JSON object; anything else
    becomes an invalid tool call that the router answers with an error the model can act on.
    """
    valid: list[dict[str, Any]] = []
    invalid: list[dict[str, Any]] = []
    for chunk in merged.tool_call_chunks:
        if not chunk.get("id"):
            continue
        raw = {
            "id": chunk["id"],
            "function": {"name": chunk.get("name") or "", "arguments": chunk.get("args") or ""},
        }
        try:
            call = parse_tool_call(raw)  # langchain-core's strict (non-partial) parser
        except OutputParserException as exc:
            invalid.append(dict(make_invalid_tool_call(raw, str(exc))))
            continue
        if call is not None and isinstance(call["args"], dict):
            valid.append(call)
        else:
            invalid.append(dict(make_invalid_tool_call(raw, "the arguments must be a JSON object")))
    known = {c["id"] for c in valid} | {c["id"] for c in invalid}
    valid.extend(dict(c) for c in merged.tool_calls if c.get("id") not in known)
    _unique_ids([*valid, *invalid])
    return valid, invalid


def _unique_ids(calls: list[dict[str, Any]]) -> None:
    """Give a call that repeats an earlier call's id a new one (``dup`` -> ``dup~2``).

    One id holds one answer: two calls sharing an id would both run with one answer stored,
    and the next request (two calls, one answer) is refused by the API.
    """
    seen: set[str] = set()
    for call in calls:
        call_id = str(call.get("id") or "")
        if call_id in seen:
            n = 2
            while f"{call_id}~{n}" in seen:
                n += 1
            logger.warning(
                "the model sent tool call id %r twice; renamed to %s~%d", call_id, call_id, n
            )
            call["id"] = f"{call_id}~{n}"
        seen.add(str(call["id"]))


def _takes_timing(on_error: Any) -> bool:
    """True when an observer's ``on_error`` accepts ``model=`` and ``latency_seconds=``."""
    try:
        params = inspect.signature(on_error).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return "model" in params and "latency_seconds" in params


def _chained(error: StreamAgentError, exc: BaseException) -> StreamAgentError:
    """``error`` ready to raise for ``exc``: caused by ``exc`` when it is a new error, as is
    when ``exc`` already was one (``raise e from e`` would make ``e`` its own cause and drop
    the original exception from the chain)."""
    if error is not exc:
        error.__cause__ = exc  # what ``raise error from exc`` does
        error.__suppress_context__ = True
    return error


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
        self.config = config
        self.name = name
        self.model_name = config.model.model
        self._tools = list(tools)
        self._fixed: Runnable[LanguageModelInput, BaseMessage] | None = (
            None if llm is None else self._bind(llm)
        )
        self._lazy: dict[
            tuple[tuple[str, Any], ...], Runnable[LanguageModelInput, BaseMessage]
        ] = {}
        self.policy = RetryPolicy(config.retry)
        self.costs = costs or CostCalculator(prices=config.prices)
        self.counter = TokenCounter(self.model_name)
        self.observer: AgentObserver = observer or NullObserver()
        self._tags = [f"streamagent:{name}"]
        self._metadata = {AGENT_METADATA_KEY: name}

    def _fast_path(self) -> bool:
        """Whether this node hands its tokens to ``astream_chunks``' sink (the fast path)."""
        return self.config.model.fast_path and fast_path_available()

    def _bind(self, llm: BaseChatModel) -> Runnable[LanguageModelInput, BaseMessage]:
        return llm.bind_tools(self._tools) if self._tools else llm

    def runnable(self, config: RunnableConfig | None) -> Runnable[LanguageModelInput, BaseMessage]:
        """The chat model to call: the one given, or ChatOpenAI built from the configuration.

        Without a fixed model, a run's ``configurable`` may override ``model``, ``base_url``,
        ``temperature`` and ``max_tokens`` (LangGraph Server / Studio assistants use this).
        """
        if self._fixed is not None:
            return self._fixed
        configurable = (config or {}).get("configurable") or {}
        overrides = tuple(sorted((k, configurable[k]) for k in _OVERRIDABLE if k in configurable))
        runnable = self._lazy.get(overrides)
        if runnable is None:
            model_cfg = replace(self.config.model, **dict(overrides))
            runnable = self._bind(create_chat_model(model_cfg))
            self._lazy[overrides] = runnable
        return runnable

    def model_for(self, config: RunnableConfig | None) -> str:
        configurable = (config or {}).get("configurable") or {}
        if self._fixed is None and isinstance(configurable.get("model"), str):
            return str(configurable["model"])
        return self.model_name

    # ------------------------------------------------------------------ pure parts
    def model_input(self, state: dict[str, Any]) -> list[BaseMessage]:
        """The messages the model sees: the prune node's view of the thread + system prompt."""
        messages: list[BaseMessage] = list(state.get("messages") or [])
        view = state.get("context_view") or {}
        kept = view.get("kept_ids")
        shrunk: dict[str, str] = view.get("shrunk") or {}
        if kept is not None:
            keep = set(kept)
            messages = [m for m in messages if m.id in keep]
        if shrunk:
            messages = [
                m.model_copy(update={"content": shrunk[m.id]})
                if isinstance(m, ToolMessage) and m.id in shrunk
                else m
                for m in messages
            ]
        if self.config.system_prompt and not any(isinstance(m, SystemMessage) for m in messages):
            messages.insert(0, SystemMessage(content=self.config.system_prompt))
        return messages

    def check_budgets(
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

    def state_update(
        self,
        state: dict[str, Any],
        message: AIMessage,
        messages: list[BaseMessage],
        attempt: _Attempt,
        *,
        model: str | None = None,
    ) -> dict[str, Any]:
        """Usage/cost bookkeeping for one successful call (pure)."""
        usage = Usage.from_usage_metadata(message.usage_metadata)
        if message.usage_metadata is None:  # the server sent none: tiktoken's estimate
            usage = estimated_usage(self.counter, messages, message, self._tools)
            message.response_metadata["usage_estimated"] = True
        model = model or self.model_name
        cost: Decimal | None = self.costs.cost(usage, model=model)
        message.response_metadata["cost_usd"] = None if cost is None else str(cost)
        message.response_metadata["attempts"] = attempt.number
        if message.name is None:
            message.name = self.name
        latency = time.perf_counter() - attempt.started
        ttft = None if attempt.first_token_at is None else attempt.first_token_at - attempt.started
        self.observer.on_model_call(
            model=model,
            usage=usage,
            cost_usd=cost,
            latency_seconds=latency,
            time_to_first_token_seconds=ttft,
            output_chunks=int(message.response_metadata.get("streamed_chunks", 0)),
        )
        annotate_current_run(
            model_run_metadata(model=model, usage=usage, cost_usd=cost, attempts=attempt.number)
        )
        return {
            "messages": [message],
            "usage": usage.to_dict(),
            "cost_usd": cost,
            "run_steps": run_steps(state) + 1,
        }

    def _output_cap(self, room: int | None, config: RunnableConfig | None) -> int | None:
        """``room`` (what the token budget leaves for output) when it is below the call's own
        output limit (a run's ``max_tokens`` override, the given model's, the configured one)."""
        if room is None:
            return None
        limit: Any = self.config.model.max_tokens
        if self._fixed is not None:
            bound, _ = _unbind(self._fixed)
            limit = getattr(bound, "max_tokens", None)
        else:
            limit = ((config or {}).get("configurable") or {}).get("max_tokens", limit)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit <= room:
            return None
        return room

    def _checked_budgets(
        self, state: dict[str, Any], messages: list[BaseMessage], *, model: str
    ) -> int | None:
        try:
            return self.check_budgets(state, messages, model=model)
        except StreamAgentError as error:
            self.observer.on_error(error)
            raise

    def _llm_config(
        self, config: RunnableConfig | None, *, nostream: bool = False
    ) -> RunnableConfig:
        """The node's config plus the agent's tags and metadata for the model run.

        A shallow copy, not ``merge_configs`` (which re-ensures and copies every part, callback
        manager included, ~0.2 ms per call): the model only reads this config. ``nostream``
        adds LangGraph's ``nostream`` tag: the node hands the tokens to a sink itself.
        """
        llm_config = cast("dict[str, Any]", dict(config or {}))
        tags = llm_config.get("tags") or []
        own = [*self._tags, TAG_NOSTREAM] if nostream else self._tags
        llm_config["tags"] = [*tags, *(t for t in own if t not in tags)]
        if nostream:
            llm_config["callbacks"] = _without_messages_mode(llm_config.get("callbacks"))
        # astream_chunks' tracker of *other* models' usage: not on this call's token path
        llm_config["callbacks"] = without_tracker(llm_config.get("callbacks"))
        llm_config["metadata"] = {**(llm_config.get("metadata") or {}), **self._metadata}
        return cast("RunnableConfig", llm_config)

    def _retrying_kwargs(
        self, attempt: _Attempt, max_attempts: int | None = None
    ) -> dict[str, Any]:
        return {
            "stop": stop_after_attempt(max_attempts or self.policy.max_attempts),
            "retry": retry_if_exception(self.policy.retries),
            "wait": self._wait,
            "before_sleep": functools.partial(self._before_sleep, attempt),
            "reraise": True,
        }

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        return self.policy.delay_seconds(exc or Exception(), attempt=retry_state.attempt_number)

    def _before_sleep(self, attempt: _Attempt, retry_state: RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        error = classify_error(exc) if exc else StreamBrokenError("unknown failure")
        delay = retry_state.upcoming_sleep
        info = self.policy.describe(error, attempt=retry_state.attempt_number, delay=delay)
        info["discard_partial_output"] = attempt.emitted
        logger.warning(
            "model call attempt %d/%d failed (%s); retrying in %.2fs",
            retry_state.attempt_number,
            self.policy.max_attempts,
            error.message,
            delay,
        )
        self.observer.on_retry(model=attempt.model or self.model_name, error=error)
        if attempt.emitted:
            event = {EVENT_KEY: RETRY_EVENT, "agent": self.name, **info}
            if attempt.sink is not None:  # in order with the tokens it withdraws
                attempt.sink.put((attempt.namespace, "custom", event))
            else:
                get_stream_writer()(event)
        attempt.emitted = False
        attempt.first_token_at = None

    def _observe_error(self, error: StreamAgentError, attempt: _Attempt) -> None:
        """Report a failed call: with its model and duration when the observer takes them
        (``AgentMetrics`` times it under ``error_type``), else the error alone."""
        if _takes_timing(self.observer.on_error):
            latency = time.perf_counter() - attempt.started
            on_error = cast("Any", self.observer.on_error)
            on_error(error, model=attempt.model or self.model_name, latency_seconds=latency)
        else:
            self.observer.on_error(error)

    @staticmethod
    def _note_chunk(attempt: _Attempt, chunk: AIMessageChunk) -> None:
        if not attempt.emitted and (chunk.content or chunk.tool_call_chunks):
            attempt.emitted = True
            attempt.first_token_at = time.perf_counter()

    def _failed(self, exc: BaseException, attempt: _Attempt) -> StreamAgentError:
        """The classified error of a failed call, to raise (its cause chain kept intact)."""
        error = classify_error(exc)
        error.attempts = attempt.number
        error.partial_output = attempt.emitted
        hinted = self.policy.retry_after_hint(error)
        if hinted is not None and hinted > self.config.retry.max_delay_seconds:
            logger.warning(
                "the model endpoint asks to wait %gs, more than RetryConfig.max_delay_seconds="
                "%gs: not retried (the error carries retry_after_seconds)",
                hinted,
                self.config.retry.max_delay_seconds,
            )
        self._observe_error(error, attempt)
        return _chained(error, exc)

    # ------------------------------------------------------------------ async shell
    async def ainvoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        messages = self.model_input(state)
        model = self.model_for(config)
        cap = self._output_cap(self._checked_budgets(state, messages, model=model), config)
        message, attempt = await self.acall(messages, config, model=model, max_output_tokens=cap)
        return self.state_update(state, message, messages, attempt, model=model)

    async def acall(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        *,
        model: str,
        runnable: Runnable[LanguageModelInput, BaseMessage] | None = None,
        max_attempts: int | None = None,
        max_output_tokens: int | None = None,
    ) -> tuple[AIMessage, _Attempt]:
        """One model call with this node's retries (``max_attempts`` overrides the policy's):
        the final message and its bookkeeping. ``runnable`` replaces :meth:`runnable`'s model
        (middleware that changed the request's model, tools or settings);
        ``max_output_tokens`` is what the token budget leaves for the reply."""
        sink = sink_of(config) if self._fast_path() else None
        attempt = _Attempt(model=model, sink=sink, max_output_tokens=max_output_tokens)
        if attempt.sink is not None:
            attempt.namespace = graph_namespace(config.get("metadata") or {})
        try:
            async for retry_attempt in AsyncRetrying(
                **self._retrying_kwargs(attempt, max_attempts)
            ):
                with retry_attempt:
                    attempt.number = retry_attempt.retry_state.attempt_number
                    message = await self._astream_once(messages, config, attempt, runnable)
        except Exception as exc:  # noqa: BLE001 - re-raised, classified
            error = self._failed(exc, attempt)
            raise error from error.__cause__
        return message, attempt

    async def _ainvoke_protocol(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: _Attempt,
        runnable: Runnable[LanguageModelInput, BaseMessage] | None = None,
    ) -> AIMessage:
        """One model call for a run that consumes protocol events (LangGraph's v3 stream).

        LangChain emits protocol events (``on_stream_event``) from ``ainvoke``, not from
        ``astream``: the model is invoked (it still streams underneath, through the same
        transport), and a watcher marks the attempt as having emitted tokens.
        """
        try:
            model, bound = _unbind(runnable or self.runnable(config))
            llm_config = self._llm_config(config)
            watch = _TokenWatch(attempt)
            callbacks = llm_config.get("callbacks")
            if isinstance(callbacks, BaseCallbackManager):
                callbacks = callbacks.copy()
                callbacks.add_handler(watch, inherit=False)
                llm_config["callbacks"] = callbacks
            result = await model.ainvoke(messages, llm_config, **attempt.call_kwargs(bound))
            message = _final_invoked(result)
        except Exception as exc:  # noqa: BLE001 - re-raised, classified
            error = _chained(classify_error(stream_error(exc)), exc)
            raise error from error.__cause__
        message.response_metadata["streamed_chunks"] = watch.deltas
        return message

    async def _astream_once(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: _Attempt,
        runnable: Runnable[LanguageModelInput, BaseMessage] | None = None,
    ) -> AIMessage:
        if attempt.sink is None and lcp.wants_protocol_events(config.get("callbacks")):
            return await self._ainvoke_protocol(messages, config, attempt, runnable)
        chunks = CompactChunks()  # a long reply keeps its text, not every chunk object
        sink = attempt.sink
        try:
            model, bound = _unbind(runnable or self.runnable(config))
            llm_config = self._llm_config(config, nostream=sink is not None)
            meta = llm_config.get("metadata")
            async for chunk in model.astream(messages, llm_config, **attempt.call_kwargs(bound)):
                if isinstance(chunk, AIMessageChunk):
                    self._note_chunk(attempt, chunk)
                    chunks.append(chunk)
                    if sink is not None:
                        sink.put((attempt.namespace, "messages", (chunk, meta)))
            message = _final_message(chunks.chunks())
        except Exception as exc:  # noqa: BLE001 - re-raised, classified
            error = _chained(classify_error(stream_error(exc)), exc)
            raise error from error.__cause__
        message.response_metadata["streamed_chunks"] = len(chunks)
        return message

    # ------------------------------------------------------------------ sync shell
    def invoke(self, state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        messages = self.model_input(state)
        model = self.model_for(config)
        cap = self._output_cap(self._checked_budgets(state, messages, model=model), config)
        message, attempt = self.call(messages, config, model=model, max_output_tokens=cap)
        return self.state_update(state, message, messages, attempt, model=model)

    def call(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        *,
        model: str,
        runnable: Runnable[LanguageModelInput, BaseMessage] | None = None,
        max_attempts: int | None = None,
        max_output_tokens: int | None = None,
    ) -> tuple[AIMessage, _Attempt]:
        """Synchronous twin of :meth:`acall`."""
        attempt = _Attempt(model=model, max_output_tokens=max_output_tokens)
        try:
            for retry_attempt in Retrying(**self._retrying_kwargs(attempt, max_attempts)):
                with retry_attempt:
                    attempt.number = retry_attempt.retry_state.attempt_number
                    message = self._stream_once(messages, config, attempt, runnable)
        except Exception as exc:  # noqa: BLE001 - re-raised, classified
            error = self._failed(exc, attempt)
            raise error from error.__cause__
        return message, attempt

    def _stream_once(
        self,
        messages: list[BaseMessage],
        config: RunnableConfig,
        attempt: _Attempt,
        runnable: Runnable[LanguageModelInput, BaseMessage] | None = None,
    ) -> AIMessage:
        chunks = CompactChunks()  # a long reply keeps its text, not every chunk object
        try:
            model, bound = _unbind(runnable or self.runnable(config))
            llm_config = self._llm_config(config)
            kwargs = attempt.call_kwargs(bound)
            if protocol_streaming(llm_config):  # stream_events v3
                return _invoked(model.invoke(messages, llm_config, **kwargs), attempt)
            for chunk in model.stream(messages, llm_config, **kwargs):
                if isinstance(chunk, AIMessageChunk):
                    self._note_chunk(attempt, chunk)
                    chunks.append(chunk)
            message = _final_message(chunks.chunks())
        except Exception as exc:  # noqa: BLE001 - re-raised, classified
            error = _chained(classify_error(stream_error(exc)), exc)
            raise error from error.__cause__
        message.response_metadata["streamed_chunks"] = len(chunks)
        return message
