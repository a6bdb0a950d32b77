"""The Responses API wire format (``POST /v1/responses``), as pure functions (no I/O).

A scripted :class:`~streamagent.testing.script.Reply` becomes the event stream OpenAI sends for
``client.responses.create(stream=True)``: ``response.created``, ``response.in_progress``, then
per output item ``response.output_item.added`` … ``response.output_item.done`` — a reasoning
item whose summary streams as ``response.reasoning_summary_text.delta`` (when the reply has a
``reasoning_summary``), a message whose text streams as ``response.output_text.delta``, one
``function_call`` item per tool call whose arguments stream as
``response.function_call_arguments.delta`` — and ``response.completed`` (or
``response.incomplete`` when the reply was cut at the output-token limit) carrying the whole
response with its usage (cached input and reasoning tokens). Each event is an SSE event with an
``event:`` line and a ``sequence_number``; the stream has no ``[DONE]``.

Example:
    >>> from streamagent.testing.script import Reply
    >>> from streamagent.testing.wire import ReplyPlan
    >>> plan = ReplyPlan.build(Reply("Hi there"), request_body={}, first_call_number=1)
    >>> events = ResponsesEncoder(response_id="resp_1", created=0, model="gpt-4o").events(plan)
    >>> [e.data.split(b"\\n", 1)[0].decode() for e in events][:3]
    ['event: response.created', 'event: response.in_progress', 'event: response.output_item.added']
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from streamagent.testing.wire import ReplyPlan, SseEvent

__all__ = ["ResponsesEncoder", "responses_usage"]


def responses_usage(plan: ReplyPlan) -> dict[str, Any]:
    """The Responses API usage object of a reply (its figures as in Chat Completions)."""
    output = plan.completion_tokens
    return {
        "input_tokens": plan.prompt_tokens,
        "input_tokens_details": {"cached_tokens": plan.reply.cached_tokens},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": plan.reply.reasoning_tokens},
        "total_tokens": plan.prompt_tokens + output,
    }


class ResponsesEncoder:
    """Builds one response's events and body (ids, model, sequence numbers)."""

    __slots__ = ("_sequence", "created", "model", "response_id")

    def __init__(self, *, response_id: str, created: int, model: str) -> None:
        self.response_id = response_id
        self.created = created
        self.model = model
        self._sequence = 0

    # ------------------------------------------------------------------ objects
    def response(
        self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The ``response`` object (``status``: in_progress, completed or incomplete)."""
        body: dict[str, Any] = {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "error": None,
            "incomplete_details": (
                {"reason": "max_output_tokens"} if status == "incomplete" else None
            ),
            "usage": usage,
        }
        return body

    def output_items(self, plan: ReplyPlan) -> list[dict[str, Any]]:
        """The finished output items: reasoning, message, function calls (those present)."""
        items: list[dict[str, Any]] = []
        summary = plan.reply.reasoning_summary
        if summary:
            items.append(self._reasoning(summary))
        if plan.content_pieces or not plan.call_ids:
            items.append(self._message(plan.reply.content, "completed"))
        for index, (call, call_id) in enumerate(
            zip(plan.reply.tool_calls, plan.call_ids, strict=True)
        ):
            items.append(
                self._function_call(index, call.name, call_id, call.arguments_json, "completed")
            )
        return items

    def _reasoning(self, summary: str) -> dict[str, Any]:
        text = [{"type": "summary_text", "text": summary}] if summary else []
        return {"id": f"rs_{self.response_id}", "type": "reasoning", "summary": text}

    def _message(self, text: str, status: str) -> dict[str, Any]:
        content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
        return {
            "id": f"msg_{self.response_id}",
            "type": "message",
            "role": "assistant",
            "status": status,
            "content": content,
        }

    def _function_call(
        self, index: int, name: str, call_id: str, arguments: str, status: str
    ) -> dict[str, Any]:
        return {
            "id": f"fc_{self.response_id}_{index}",
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
            "status": status,
        }

    # ------------------------------------------------------------------ events
    def event(self, kind: str, paced: bool = False, **fields: Any) -> SseEvent:
        """One SSE event: ``event: kind`` and its JSON with ``type`` and ``sequence_number``."""
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        data = b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
        return SseEvent(data, paced=paced)

    def events(self, plan: ReplyPlan, *, complete: bool = True) -> Iterator[SseEvent]:
        """The whole event stream of ``plan`` (``complete=False``: no final event)."""
        yield self.event("response.created", response=self.response("in_progress", [], None))
        yield self.event("response.in_progress", response=self.response("in_progress", [], None))
        output_index = 0
        summary = plan.reply.reasoning_summary
        if summary:
            yield from self._reasoning_events(output_index, summary)
            output_index += 1
        if plan.content_pieces or not plan.call_ids:
            yield from self._message_events(output_index, plan)
            output_index += 1
        for index, (call, call_id, pieces) in enumerate(
            zip(plan.reply.tool_calls, plan.call_ids, plan.argument_pieces, strict=True)
        ):
            yield from self._call_events(output_index, index, call.name, call_id, pieces)
            output_index += 1
        if not complete:
            return
        status = "incomplete" if plan.reply.resolved_finish_reason == "length" else "completed"
        final = self.response(status, self.output_items(plan), responses_usage(plan))
        yield self.event(f"response.{status}", response=final)

    def _reasoning_events(self, output_index: int, summary: str) -> Iterator[SseEvent]:
        from streamagent.testing.wire import split_pieces

        item = self._reasoning("")
        item_id = item["id"]
        yield self.event("response.output_item.added", output_index=output_index, item=item)
        part = {"type": "summary_text", "text": ""}
        where = {"item_id": item_id, "output_index": output_index, "summary_index": 0}
        yield self.event("response.reasoning_summary_part.added", part=part, **where)
        for piece in split_pieces(summary):
            yield self.event("response.reasoning_summary_text.delta", True, delta=piece, **where)
        yield self.event("response.reasoning_summary_text.done", text=summary, **where)
        done_part = {"type": "summary_text", "text": summary}
        yield self.event("response.reasoning_summary_part.done", part=done_part, **where)
        yield self.event(
            "response.output_item.done", output_index=output_index, item=self._reasoning(summary)
        )

    def _message_events(self, output_index: int, plan: ReplyPlan) -> Iterator[SseEvent]:
        item = self._message("", "in_progress")
        where = {"item_id": item["id"], "output_index": output_index, "content_index": 0}
        yield self.event("response.output_item.added", output_index=output_index, item=item)
        part = {"type": "output_text", "text": "", "annotations": []}
        yield self.event("response.content_part.added", part=part, **where)
        for piece in plan.content_pieces:
            yield self.event("response.output_text.delta", True, delta=piece, logprobs=[], **where)
        text = plan.reply.content
        yield self.event("response.output_text.done", text=text, logprobs=[], **where)
        done_part = {"type": "output_text", "text": text, "annotations": []}
        yield self.event("response.content_part.done", part=done_part, **where)
        yield self.event(
            "response.output_item.done",
            output_index=output_index,
            item=self._message(text, "completed"),
        )

    def _call_events(
        self, output_index: int, index: int, name: str, call_id: str, pieces: tuple[str, ...]
    ) -> Iterator[SseEvent]:
        item = self._function_call(index, name, call_id, "", "in_progress")
        where = {"item_id": item["id"], "output_index": output_index}
        yield self.event("response.output_item.added", True, output_index=output_index, item=item)
        for piece in pieces:
            yield self.event("response.function_call_arguments.delta", True, delta=piece, **where)
        arguments = "".join(pieces)
        yield self.event("response.function_call_arguments.done", arguments=arguments, **where)
        done = self._function_call(index, name, call_id, arguments, "completed")
        yield self.event("response.output_item.done", output_index=output_index, item=done)
