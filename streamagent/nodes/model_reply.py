"""The model node's reply: one checked ``AIMessage`` from a streamed or invoked call (pure).

A streamed reply is merged from its chunks (:func:`final_message`); an invoked one (LangGraph's
v3 stream, where the model is invoked so that LangChain fires protocol events) is checked the
same way (:func:`invoked_reply`). Either way a reply without a
``finish_reason`` is a :class:`~streamagent.errors.StreamBrokenError` — a truncated stream is
never a silent success — and tool-call arguments are parsed strictly
(:func:`strict_tool_calls`): a truncated argument string is an invalid tool call, not a
different, shorter call. Two calls never share an id (:func:`unique_ids`).

Example:
    >>> from langchain_core.messages import AIMessageChunk
    >>> def call(args: str) -> AIMessageChunk:
    ...     return AIMessageChunk(content="", tool_call_chunks=[
    ...         {"index": 0, "id": "c1", "name": "read_file", "args": args}])
    >>> end = AIMessageChunk(content="", response_metadata={"finish_reason": "tool_calls"})
    >>> final_message([call('{"path": "a"}'), end]).tool_calls[0]["args"]
    {'path': 'a'}
    >>> reply = final_message([call('{"path": "a", "mode": '), end])  # truncated arguments
    >>> reply.tool_calls, reply.invalid_tool_calls[0]["id"]
    ([], 'c1')
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.exceptions import OutputParserException
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call

from streamagent.errors import StreamBrokenError
from streamagent.llm.chunk_merge import CompactChunks
from streamagent.llm.responses import responses_finish_reason
from streamagent.nodes._quirks import dedupe_tool_names, infer_finish_reason

__all__ = [
    "final_message",
    "invoked_reply",
    "streamed_reply",
    "strict_tool_calls",
    "unique_ids",
]

logger = logging.getLogger("streamagent.nodes.model")  # the node's records keep their logger

_NO_FINISH = "the model stream ended without a finish_reason (truncated stream, no [DONE])"
_NOT_REPLY_FIELDS = {"type", "tool_call_chunks", "chunk_position"}


def final_message(chunks: list[AIMessageChunk]) -> AIMessage:
    """Merge streamed chunks into one message; a stream without finish_reason is broken."""
    if not chunks:
        raise StreamBrokenError("the model stream ended before sending anything")
    chunks = dedupe_tool_names(chunks)  # llama.cpp repeats the name in every delta
    merged = chunks[0] if len(chunks) == 1 else add_ai_message_chunks(chunks[0], *chunks[1:])
    responses_finish_reason(merged)  # the Responses API reports a status instead
    infer_finish_reason(merged)  # no finish_reason, but a usage chunk ended the reply
    if not merged.response_metadata.get("finish_reason"):
        raise StreamBrokenError(_NO_FINISH)
    data = merged.model_dump(exclude=_NOT_REPLY_FIELDS)
    data["tool_calls"], invalid = strict_tool_calls(merged)
    # a call parsed strictly replaces LangChain's partial-parse entry for it (one entry per id)
    parsed = {c["id"] for c in data["tool_calls"]} | {c["id"] for c in invalid}
    kept = [c for c in data.get("invalid_tool_calls", []) if c.get("id") not in parsed]
    data["invalid_tool_calls"] = [*kept, *invalid]
    return AIMessage(**data)


def streamed_reply(chunks: CompactChunks) -> AIMessage:
    """:func:`final_message` of a stream's collected chunks, marked with how many streamed."""
    message = final_message(chunks.chunks())
    message.response_metadata["streamed_chunks"] = len(chunks)
    return message


def invoked_reply(reply: BaseMessage, *, streamed_chunks: int = 0) -> AIMessage:
    """The reply of an invoked call (LangGraph's v3 stream, sync and async), checked as
    :func:`final_message` checks a stream: a new ``AIMessage`` (chunk fields dropped), text
    content blocks joined into one string as the streamed path stores text, marked with
    ``streamed_chunks`` (the content deltas the protocol events carried)."""
    if not isinstance(reply, AIMessage):
        raise StreamBrokenError(f"the model returned a {type(reply).__name__}, not a reply")
    content = reply.content
    if isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "text" for b in content
    ):
        content = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    responses_finish_reason(reply)  # the Responses API reports a status instead
    if not reply.response_metadata.get("finish_reason"):
        raise StreamBrokenError(_NO_FINISH)
    message = AIMessage(**{**reply.model_dump(exclude=_NOT_REPLY_FIELDS), "content": content})
    message.response_metadata["streamed_chunks"] = streamed_chunks
    return message


def strict_tool_calls(
    merged: AIMessageChunk,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse streamed tool-call arguments strictly: ``(valid calls, invalid calls)``.

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
    unique_ids([*valid, *invalid])
    return valid, invalid


def unique_ids(calls: list[dict[str, Any]]) -> None:
    """Give a call that repeats an earlier call's id a new one (``dup`` -> ``dup~2``), in place.

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
