"""The OpenAI Responses API's wire format for the scripted server (``POST /v1/responses``).

A scripted :class:`~streamagent.testing.Reply` is streamed as the Responses API streams:
``response.created``, then per output item ``response.output_item.added`` … its deltas …
``response.output_item.done`` — a ``reasoning`` item with ``response.reasoning_summary_text.delta``
events (``Reply.reasoning_summary``), a ``message`` item with ``response.output_text.delta``
events, one ``function_call`` item per tool call with
``response.function_call_arguments.delta`` events — and ``response.completed`` with the whole
response and its usage (``input_tokens_details.cached_tokens``,
``output_tokens_details.reasoning_tokens``). Every event is an SSE ``event:`` + ``data:`` pair.

Example:
    >>> from streamagent.testing import Reply
    >>> from streamagent.testing.wire import ReplyPlan
    >>> plan = ReplyPlan.build(Reply("Hi there"), request_body={}, first_call_number=1)
    >>> encoder = ResponsesEncoder(response_id="resp_1", created=0, model="gpt-4o")
    >>> kinds = [e.data.split(b"\\n")[0].decode() for e in encoder.events(plan)]
    >>> kinds[:2], kinds[-1]
    (['event: response.created', 'event: response.output_item.added'], 'event: response.completed')
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from streamagent.testing.wire import ReplyPlan, SseEvent

__all__ = ["ResponsesEncoder"]


class ResponsesEncoder:
    """Encodes one scripted reply as Responses API events (and the non-streamed body)."""

    def __init__(self, *, response_id: str, created: int, model: str) -> None:
        self.response_id = response_id
        self.created = created
        self.model = model
        self._sequence = 0

    def _event(self, kind: str, body: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **body}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def response(
        self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The ``response`` object (of ``response.created`` / ``.completed`` or a plain POST)."""
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": usage,
            "error": None,
            "incomplete_details": None,
        }

    @staticmethod
    def usage(plan: ReplyPlan) -> dict[str, Any]:
        """Usage in the Responses API's shape."""
        output = plan.completion_tokens
        return {
            "input_tokens": plan.prompt_tokens,
            "input_tokens_details": {"cached_tokens": plan.reply.cached_tokens},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": plan.reply.reasoning_tokens},
            "total_tokens": plan.prompt_tokens + output,
        }

    @staticmethod
    def output_items(plan: ReplyPlan) -> list[dict[str, Any]]:
        """The reply's finished output items."""
        items: list[dict[str, Any]] = []
        summary = plan.reply.reasoning_summary
        if summary:
            items.append(
                {
                    "id": "rs_1",
                    "type": "reasoning",
                    "summary": [{"type": "summary_text", "text": summary}],
                }
            )
        if plan.reply.content:
            items.append(
                {
                    "id": "msg_1",
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [
                        {"type": "output_text", "text": plan.reply.content, "annotations": []}
                    ],
                }
            )
        for number, (call, call_id) in enumerate(
            zip(plan.reply.tool_calls, plan.call_ids, strict=True), start=1
        ):
            items.append(
                {
                    "id": f"fc_{number}",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": call_id,
                    "name": call.name,
                    "arguments": call.arguments_json,
                }
            )
        return items

    def events(self, plan: ReplyPlan, *, complete: bool = True) -> Iterator[SseEvent]:
        """The streamed events, in order (``complete=False``: no ``response.completed``)."""
        yield SseEvent(
            self._event("response.created", {"response": self.response("in_progress", [], None)}),
            paced=False,
        )
        items = self.output_items(plan)
        for index, item in enumerate(items):
            yield from self._item_events(plan, index, item)
        if complete:
            done = self.response("completed", items, self.usage(plan))
            yield SseEvent(self._event("response.completed", {"response": done}), paced=False)

    def _item_events(self, plan: ReplyPlan, index: int, item: dict[str, Any]) -> Iterator[SseEvent]:
        start = {**item, "status": "in_progress"}
        if item["type"] == "message":
            start["content"] = []
        elif item["type"] == "function_call":
            start["arguments"] = ""
        elif item["type"] == "reasoning":
            start["summary"] = []
        added = {"output_index": index, "item": start}
        yield SseEvent(self._event("response.output_item.added", added), paced=False)
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            yield from self._text_events(plan, where)
        elif item["type"] == "function_call":
            call_number = int(item["id"].removeprefix("fc_")) - 1
            for piece in plan.argument_pieces[call_number]:
                delta = {**where, "delta": piece}
                yield SseEvent(
                    self._event("response.function_call_arguments.delta", delta), paced=True
                )
            done = {**where, "arguments": item["arguments"]}
            yield SseEvent(self._event("response.function_call_arguments.done", done), paced=False)
        else:
            yield from self._summary_events(plan, where)
        finished = {"output_index": index, "item": item}
        yield SseEvent(self._event("response.output_item.done", finished), paced=False)

    def _text_events(self, plan: ReplyPlan, where: dict[str, Any]) -> Iterator[SseEvent]:
        part = {**where, "content_index": 0}
        empty = {"type": "output_text", "text": "", "annotations": []}
        yield SseEvent(
            self._event("response.content_part.added", {**part, "part": empty}), paced=False
        )
        for piece in plan.content_pieces:
            delta = {**part, "delta": piece, "logprobs": []}
            yield SseEvent(self._event("response.output_text.delta", delta), paced=True)
        text = plan.reply.content
        done = {**part, "text": text, "logprobs": []}
        yield SseEvent(self._event("response.output_text.done", done), paced=False)
        full = {"type": "output_text", "text": text, "annotations": []}
        yield SseEvent(
            self._event("response.content_part.done", {**part, "part": full}), paced=False
        )

    def _summary_events(self, plan: ReplyPlan, where: dict[str, Any]) -> Iterator[SseEvent]:
        part = {**where, "summary_index": 0}
        empty = {"type": "summary_text", "text": ""}
        yield SseEvent(
            self._event("response.reasoning_summary_part.added", {**part, "part": empty}),
            paced=False,
        )
        for piece in _pieces(plan.reply.reasoning_summary):
            delta = {**part, "delta": piece}
            yield SseEvent(self._event("response.reasoning_summary_text.delta", delta), paced=True)
        text = plan.reply.reasoning_summary
        yield SseEvent(
            self._event("response.reasoning_summary_text.done", {**part, "text": text}),
            paced=False,
        )


def _pieces(text: str) -> tuple[str, ...]:
    from streamagent.testing.wire import split_pieces

    return split_pieces(text)
