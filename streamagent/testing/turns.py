"""The scripted turns of a :class:`~streamagent.testing.ScriptedOpenAIServer` (pure, no I/O).

:class:`ScriptedTurns` is the server's state, thread-safe: the script still to answer, the
requests received (recorded before they are answered), the fallback ``responder``, and the
numbering of completions and tool calls. For each request it decides the :data:`Answer` —
a :class:`~streamagent.testing.script.Reply` to send, a
:class:`~streamagent.testing.raw.RawReply` to replay, an HTTP
:class:`~streamagent.testing.script.Fault`, or a :class:`Refusal` of the server itself — and
renders a reply in the wire format asked for (:class:`ChatRendering` for Chat Completions,
:class:`ResponsesRendering` for the Responses API). The HTTP side lives in
:mod:`streamagent.testing.respond`.

Example:
    >>> from streamagent.testing.script import RecordedRequest
    >>> turns = ScriptedTurns(["Hi there"])
    >>> record = RecordedRequest("POST", "/v1/chat/completions", {}, {"messages": []})
    >>> number, item = turns.take(record)
    >>> answer = turns.answer(record, item, number)
    >>> answer.content, turns.remaining
    ('Hi there', 0)
    >>> turns.render(record, answer, default_model="gpt-4o").body(True)["choices"][0]["message"]
    {'role': 'assistant', 'content': 'Hi there', 'refusal': None}
    >>> number, item = turns.take(record)
    >>> turns.answer(record, item, number)
    Refusal(status=400, message='ScriptedOpenAIServer: script exhausted (request #2)')
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from streamagent.testing.raw import RawReply
from streamagent.testing.responses_wire import ResponsesEncoder, responses_usage
from streamagent.testing.script import (
    DEFAULT_FAULT_TEXT,
    Fault,
    RecordedRequest,
    Reply,
    ScriptItem,
    parse_script_item,
)
from streamagent.testing.wire import ChunkEncoder, ReplyPlan, SseEvent

__all__ = [
    "Answer",
    "ChatRendering",
    "Refusal",
    "Rendering",
    "Responder",
    "ResponsesRendering",
    "ScriptedTurns",
]

logger = logging.getLogger(__name__)

Responder = Callable[[RecordedRequest], Reply | Fault | str]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An error answer of the server itself (script exhausted, responder failed)."""

    status: int
    message: str


#: What a request gets: a reply to send, raw bytes to replay, an HTTP fault, or a refusal.
Answer: TypeAlias = Reply | RawReply | Fault | Refusal


class Rendering(Protocol):
    """A reply in one wire format: its SSE events and its non-streamed body."""

    def events(self, complete: bool) -> Iterator[SseEvent]:
        """The SSE events (``complete=False``: without the tail a clean end sends)."""
        ...

    def body(self, complete: bool) -> dict[str, Any]:
        """The non-streamed response body."""
        ...


@dataclass(frozen=True, slots=True)
class ChatRendering:
    """A reply as ``chat.completion.chunk`` events / a ``chat.completion`` body."""

    plan: ReplyPlan
    encoder: ChunkEncoder
    include_usage: bool

    def events(self, complete: bool) -> Iterator[SseEvent]:
        return self.plan.events(self.encoder, include_usage=self.include_usage, complete=complete)

    def body(self, complete: bool) -> dict[str, Any]:
        return self.plan.completion(self.encoder, complete=complete)


@dataclass(frozen=True, slots=True)
class ResponsesRendering:
    """A reply as the Responses API's events / ``response`` object."""

    plan: ReplyPlan
    encoder: ResponsesEncoder

    def events(self, complete: bool) -> Iterator[SseEvent]:
        return self.encoder.events(self.plan, complete=complete)

    def body(self, complete: bool) -> dict[str, Any]:
        status = "completed" if complete else "in_progress"
        usage = responses_usage(self.plan) if complete else None
        return self.encoder.response(status, self.encoder.output_items(self.plan), usage)


class ScriptedTurns:
    """The script, the recorded requests and the numbering of one server (thread-safe)."""

    def __init__(self, script: Iterable[ScriptItem] = (), responder: Responder | None = None):
        self._script: deque[ScriptItem] = deque(parse_script_item(item) for item in script)
        self._responder = responder
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._next_call_number = 1
        self._completion_numbers = itertools.count(1)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def remaining(self) -> int:
        """How many script items are not consumed yet."""
        with self._lock:
            return len(self._script)

    def enqueue(self, *items: Reply | Fault | str) -> None:
        """Append items to the script."""
        parsed = [parse_script_item(item) for item in items]
        with self._lock:
            self._script.extend(parsed)

    def take(self, record: RecordedRequest) -> tuple[int, ScriptItem | None]:
        """Record ``record``; its number and the next script item (``None``: script empty, or
        a body that is not a JSON object, which consumes nothing)."""
        with self._lock:
            self._requests.append(record)
            number = len(self._requests)
            if not isinstance(record.body, dict) or not self._script:
                return number, None
            return number, self._script.popleft()

    def answer(self, record: RecordedRequest, item: ScriptItem | None, number: int) -> Answer:
        """What request ``number`` gets for script ``item`` (``None``: ask the responder)."""
        if item is None:
            asked = self._ask_responder(record, number)
            if isinstance(asked, Refusal):
                return asked
            item = asked
        if isinstance(item, str):
            return Reply(item)
        if isinstance(item, RawReply):
            return item
        if isinstance(item, Fault):
            return item if item.kind == "http" else Reply(DEFAULT_FAULT_TEXT, fault=item)
        if item.fault is not None and item.fault.kind == "http":
            return item.fault
        return item

    def _ask_responder(self, record: RecordedRequest, number: int) -> ScriptItem | Refusal:
        if self._responder is None:
            message = f"ScriptedOpenAIServer: script exhausted (request #{number})"
            logger.warning("%s", message)
            return Refusal(400, message)
        try:
            return parse_script_item(self._responder(record))
        except Exception as exc:
            logger.exception("ScriptedOpenAIServer: responder failed on request #%d", number)
            return Refusal(
                500, f"ScriptedOpenAIServer: responder raised {type(exc).__name__}: {exc}"
            )

    def render(
        self,
        record: RecordedRequest,
        reply: Reply,
        *,
        default_model: str,
        responses_api: bool = False,
    ) -> Rendering:
        """``reply`` to ``record`` in its wire format, with the next ids and call numbers."""
        with self._lock:
            first_call = self._next_call_number
            self._next_call_number += len(reply.tool_calls)
            completion_number = next(self._completion_numbers)
        model = record.body.get("model") if isinstance(record.body, dict) else None
        encoder = ChunkEncoder(
            completion_id=f"chatcmpl-scripted{completion_number:06d}",
            created=int(time.time()),
            model=model if isinstance(model, str) and model else default_model,
        )
        plan = ReplyPlan.build(reply, request_body=record.body, first_call_number=first_call)
        if responses_api:
            responses = ResponsesEncoder(
                response_id=encoder.completion_id.replace("chatcmpl-", "resp_"),
                created=encoder.created,
                model=encoder.model,
            )
            return ResponsesRendering(plan, responses)
        return ChatRendering(plan, encoder, record.include_usage)
