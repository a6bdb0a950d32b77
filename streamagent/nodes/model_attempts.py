"""The model node's retry loop: the attempts of one model call, with the node's policy.

The node is the single owner of retries (the SDK's are off). :class:`ModelAttempts` runs one
call's attempts (``run`` / ``arun``, around any function of an :class:`Attempt`): an
attempt's failure is classified (:func:`attempt_error`); a retryable one waits the policy's
delay and tries again. A retry after tokens were streamed is announced with a ``retry``
custom stream event (in order with the tokens when the run reads a sink) so consumers discard
that partial output. The error that ends the call carries ``attempts`` and
``partial_output``, keeps its cause chain, and is reported to the observer (with the model and
the call's duration when the observer's ``on_error`` takes them).

Example:
    >>> from streamagent.config import RetryConfig
    >>> from streamagent.errors import StreamBrokenError
    >>> from streamagent.llm.retry import RetryPolicy
    >>> attempts = ModelAttempts(RetryPolicy(RetryConfig(initial_delay_seconds=0)),
    ...                          name="agent", model_name="gpt-4o")
    >>> def flaky(attempt: Attempt) -> str:
    ...     if attempt.number < 3:
    ...         raise StreamBrokenError("the stream broke")
    ...     return f"answered on attempt {attempt.number}"
    >>> attempts.run(flaky, Attempt(model="gpt-4o"))
    'answered on attempt 3'
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk
from langgraph.config import get_stream_writer
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from streamagent.errors import StreamAgentError, StreamBrokenError
from streamagent.llm.retry import RetryPolicy, classify_error
from streamagent.nodes._quirks import stream_error
from streamagent.observability.observer import AgentObserver, NullObserver
from streamagent.streaming.protocol import EVENT_KEY, RETRY_EVENT
from streamagent.streaming.sink import TokenSink

__all__ = [
    "Attempt",
    "ModelAttempts",
    "TokenWatch",
    "attempt_error",
    "chained",
    "takes_timing",
]

logger = logging.getLogger("streamagent.nodes.model")  # the node's records keep their logger

T = TypeVar("T")


@dataclass
class Attempt:
    """Per-call bookkeeping across its attempts (never shared between concurrent runs)."""

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

    def note_chunk(self, chunk: AIMessageChunk) -> None:
        """Mark the attempt as having emitted tokens at its first chunk with content."""
        if not self.emitted and (chunk.content or chunk.tool_call_chunks):
            self.emitted = True
            self.first_token_at = time.perf_counter()


class TokenWatch(BaseCallbackHandler):
    """Marks an attempt as having emitted tokens when protocol content deltas stream."""

    run_inline = True  # a few attribute writes: no executor hop per event

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        self.deltas = 0

    def on_stream_event(self, event: Any, **kwargs: Any) -> None:
        if isinstance(event, Mapping) and event.get("event") == "content-block-delta":
            self.deltas += 1
            if not self.attempt.emitted:
                self.attempt.emitted = True
                self.attempt.first_token_at = time.perf_counter()


def takes_timing(on_error: Any) -> bool:
    """True when an observer's ``on_error`` accepts ``model=`` and ``latency_seconds=``."""
    try:
        params = inspect.signature(on_error).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return "model" in params and "latency_seconds" in params


def chained(error: StreamAgentError, exc: BaseException) -> StreamAgentError:
    """``error`` ready to raise for ``exc``: caused by ``exc`` when it is a new error, as is
    when ``exc`` already was one (``raise e from e`` would make ``e`` its own cause and drop
    the original exception from the chain)."""
    if error is not exc:
        error.__cause__ = exc  # what ``raise error from exc`` does
        error.__suppress_context__ = True
    return error


def attempt_error(exc: BaseException) -> StreamAgentError:
    """The classified error of one failed attempt (an empty stream is a broken stream)."""
    return chained(classify_error(stream_error(exc)), exc)


class _Classified:
    """Context manager: one attempt's failure leaves it as its classified error
    (:func:`attempt_error`). A class, not ``contextlib.contextmanager``: ~5x cheaper."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, Exception):
            error = attempt_error(exc)
            raise error from error.__cause__


_CLASSIFIED = _Classified()


class _Ending:
    """Context manager: the error that ends a call (:meth:`ModelAttempts.failed`) leaves it
    instead of the last attempt's."""

    __slots__ = ("attempt", "attempts")

    def __init__(self, attempts: ModelAttempts, attempt: Attempt) -> None:
        self.attempts = attempts
        self.attempt = attempt

    def __enter__(self) -> None:
        return None

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        if isinstance(exc, Exception):
            error = self.attempts.failed(exc, self.attempt)
            raise error from error.__cause__


class ModelAttempts:
    """The retry loop of the model node's calls (one per node; state lives in :class:`Attempt`).

    ``observer`` hears each retry (``on_retry``) and the error that ends a call (``on_error``);
    ``name`` is the agent's name in ``retry`` events; ``model_name`` names the model when an
    attempt has none.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        name: str,
        model_name: str,
        observer: AgentObserver | None = None,
    ) -> None:
        self.policy = policy
        self.name = name
        self.model_name = model_name
        self.observer: AgentObserver = observer or NullObserver()

    # ------------------------------------------------------------------ the loops
    def run(
        self, once: Callable[[Attempt], T], attempt: Attempt, max_attempts: int | None = None
    ) -> T:
        """``once(attempt)`` with retries (``max_attempts`` overrides the policy's)."""
        with _Ending(self, attempt):
            for retry_attempt in Retrying(**self.retrying_kwargs(attempt, max_attempts)):
                with retry_attempt, _CLASSIFIED:
                    attempt.number = retry_attempt.retry_state.attempt_number
                    result = once(attempt)
        return result

    async def arun(
        self,
        once: Callable[[Attempt], Awaitable[T]],
        attempt: Attempt,
        max_attempts: int | None = None,
    ) -> T:
        """Async twin of :meth:`run`."""
        with _Ending(self, attempt):
            async for retry_attempt in AsyncRetrying(**self.retrying_kwargs(attempt, max_attempts)):
                with retry_attempt, _CLASSIFIED:
                    attempt.number = retry_attempt.retry_state.attempt_number
                    result = await once(attempt)
        return result

    # ------------------------------------------------------------------ tenacity's parts
    def retrying_kwargs(self, attempt: Attempt, max_attempts: int | None = None) -> dict[str, Any]:
        """``Retrying`` / ``AsyncRetrying`` options: the policy's stop, predicate and wait,
        this loop's ``retry`` announcement, the last error re-raised."""
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

    def _before_sleep(self, attempt: Attempt, retry_state: RetryCallState) -> None:
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

    # ------------------------------------------------------------------ the end of a call
    def failed(self, exc: BaseException, attempt: Attempt) -> StreamAgentError:
        """The classified error of a failed call, to raise (its cause chain kept intact)."""
        error = classify_error(exc)
        error.attempts = attempt.number
        error.partial_output = attempt.emitted
        hinted = self.policy.retry_after_hint(error)
        max_delay = self.policy.config.max_delay_seconds
        if hinted is not None and hinted > max_delay:
            logger.warning(
                "the model endpoint asks to wait %gs, more than RetryConfig.max_delay_seconds="
                "%gs: not retried (the error carries retry_after_seconds)",
                hinted,
                max_delay,
            )
        self.observe_error(error, attempt)
        return chained(error, exc)

    def observe_error(self, error: StreamAgentError, attempt: Attempt) -> None:
        """Report a failed call: with its model and duration when the observer takes them
        (``AgentMetrics`` times it under ``error_type``), else the error alone."""
        if takes_timing(self.observer.on_error):
            latency = time.perf_counter() - attempt.started
            on_error = cast("Any", self.observer.on_error)
            on_error(error, model=attempt.model or self.model_name, latency_seconds=latency)
        else:
            self.observer.on_error(error)
