"""The Chat Completions wire format, as pure functions (no I/O): pieces, chunks, bodies, usage.

Content is split into token-like *pieces* by a GPT-style pre-tokenizer (words with their leading
space, number groups of up to three digits, punctuation runs, line breaks, whitespace runs); each
piece is one ``chat.completion.chunk``. Tool-call arguments are split the same way, so a JSON
object arrives in pieces of a few characters, as it does from OpenAI.

Example:
    >>> split_pieces("Hello, world!")
    ('Hello', ',', ' world', '!')
    >>> estimate_prompt_tokens({"messages": [{"role": "user", "content": "12345678"}]})
    9
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from streamagent.testing.script import Fault, Reply

__all__ = [
    "DONE_EVENT",
    "MALFORMED_EVENT",
    "ChunkEncoder",
    "ReplyPlan",
    "SseEvent",
    "error_body",
    "estimate_prompt_tokens",
    "filler_text",
    "http_fault_headers",
    "split_pieces",
    "usage_dict",
]

DONE_EVENT = b"data: [DONE]\n\n"
#: A ``data:`` line whose payload is cut-off JSON, as a broken proxy might deliver.
MALFORMED_EVENT = b'data: {"id": "chatcmpl-malformed", "choices": [{"delta": {"content": "\n\n'
SYSTEM_FINGERPRINT = "fp_scripted"

_PIECE = re.compile(
    r"'(?:[sdmt]|ll|ve|re)(?![^\W\d_])"  # English contractions
    r"| ?[^\W\d_]+"  # a word with its leading space
    r"| ?\d{1,3}"  # up to three digits
    r"| ?(?:[^\s\w]|_)+"  # a punctuation run
    r"|\s*[\r\n]+"  # line breaks (with the blanks before them)
    r"|\s+(?!\S)"  # whitespace not followed by a word
    r"|\s+"
)
_FILLER_WORDS = ("lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit")
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_api_key", "invalid_api_key"),
    403: ("permission_denied", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    408: ("timeout", "timeout"),
    409: ("conflict", "conflict"),
    422: ("invalid_request_error", None),
    429: ("rate_limit_exceeded", "rate_limit_exceeded"),
}


class SseEvent(NamedTuple):
    """One SSE event of a streamed reply; ``paced`` events wait the per-token delay first."""

    data: bytes
    paced: bool


@functools.lru_cache(maxsize=512)
def split_pieces(text: str) -> tuple[str, ...]:
    """Split ``text`` into token-like pieces whose concatenation is exactly ``text``.

    >>> split_pieces("don't  stop 12345")
    ('don', "'t", ' ', ' stop', ' 123', '45')
    """
    return tuple(_PIECE.findall(text))


def filler_text(pieces: int) -> str:
    """Lorem-ipsum text that :func:`split_pieces` splits into exactly ``pieces`` pieces.

    >>> filler_text(3)
    'lorem ipsum dolor'
    """
    words = [_FILLER_WORDS[i % len(_FILLER_WORDS)] for i in range(pieces)]
    return " ".join(words)


def _message_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    else:
        text = ""
    for call in message.get("tool_calls") or ():
        function = call.get("function", {}) if isinstance(call, Mapping) else {}
        if isinstance(function, Mapping):
            text += str(function.get("name", "")) + str(function.get("arguments", ""))
    return text


def estimate_prompt_tokens(body: Any) -> int:
    """A deterministic prompt-token estimate: ``3 + Σ (4 + ceil(chars / 4))`` over the messages.

    ``chars`` is the length of the message's text content (a string, or the ``text`` parts of a
    list) plus the names and arguments of its tool calls. Tool schemas are not counted.

    >>> estimate_prompt_tokens({"messages": [{"role": "user", "content": "hi"}]})
    8
    """
    messages = body.get("messages") if isinstance(body, Mapping) else None
    total = 3
    for message in messages if isinstance(messages, list) else ():
        if isinstance(message, Mapping):
            total += 4 + math.ceil(len(_message_text(message)) / 4)
    return total


def usage_dict(
    *, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> dict[str, Any]:
    """The ``usage`` object of a completion or of the final stream chunk."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def error_body(status: int, message: str, *, code: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body ``{"error": {"message", "type", "param", "code"}}``.

    >>> error_body(429, "slow down")["error"]["type"]
    'rate_limit_exceeded'
    """
    error_type, default_code = _ERROR_TYPES.get(
        status, ("server_error", None) if status >= 500 else ("invalid_request_error", None)
    )
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def http_fault_headers(fault: Fault, *, now_epoch_seconds: float) -> dict[str, str]:
    """``Retry-After`` / ``retry-after-ms`` headers of an HTTP fault.

    >>> http_fault_headers(Fault.http(429, retry_after_seconds=2), now_epoch_seconds=0)
    {'Retry-After': '2'}
    """
    headers: dict[str, str] = {}
    if fault.retry_after_seconds is not None:
        if fault.retry_after_http_date:
            when = now_epoch_seconds + fault.retry_after_seconds
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        else:
            headers["Retry-After"] = f"{fault.retry_after_seconds:g}"
    if fault.retry_after_ms is not None:
        headers["retry-after-ms"] = str(fault.retry_after_ms)
    return headers


class ChunkEncoder:
    """Encodes the ``chat.completion.chunk`` events of one response as SSE bytes.

    Content chunks, the hot path, are pre-rendered: a constant prefix, the JSON string of the
    piece, a constant suffix — byte-identical to ``orjson.dumps(self.chunk({"content": piece}))``.
    """

    __slots__ = ("_content_prefix", "_content_suffix", "completion_id", "created", "model")

    def __init__(self, *, completion_id: str, created: int, model: str) -> None:
        self.completion_id = completion_id
        self.created = created
        self.model = model
        marker = "\x00piece\x00"
        rendered = orjson.dumps(self.chunk({"content": marker}))
        prefix, suffix = rendered.split(orjson.dumps(marker))
        self._content_prefix = b"data: " + prefix
        self._content_suffix = suffix + b"\n\n"

    def _chunk_object(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        """One chunk object with a single choice."""
        return self._chunk_object(
            [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        )

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        """The final chunk of ``stream_options.include_usage``: no choices, only usage."""
        obj = self._chunk_object([])
        obj["usage"] = usage
        return obj

    def content(self, piece: str) -> bytes:
        """The SSE event of one content piece."""
        return self._content_prefix + orjson.dumps(piece) + self._content_suffix

    @staticmethod
    def event(obj: dict[str, Any]) -> bytes:
        """Frame any JSON object as an SSE ``data:`` event."""
        return b"data: " + orjson.dumps(obj) + b"\n\n"

    def completion(
        self, message: dict[str, Any], finish_reason: str | None, usage: dict[str, Any] | None
    ) -> dict[str, Any]:
        """A non-streamed ``chat.completion`` object."""
        body: dict[str, Any] = {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if usage is not None:
            body["usage"] = usage
        return body


def _capped(reply: Reply, request_body: Any) -> Reply:
    """``reply`` cut to the request's output-token limit (text replies only)."""
    if not isinstance(request_body, Mapping) or reply.tool_calls or reply.fault is not None:
        return reply
    limit = request_body.get("max_completion_tokens") or request_body.get("max_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        return reply
    pieces = split_pieces(reply.content)
    if len(pieces) <= limit:
        return reply
    return dataclasses.replace(reply, content="".join(pieces[:limit]), finish_reason="length")


@dataclass(frozen=True, slots=True)
class ReplyPlan:
    """A reply resolved for one request: pieces, tool-call ids and usage figures."""

    reply: Reply
    call_ids: tuple[str, ...]
    prompt_tokens: int

    @classmethod
    def build(cls, reply: Reply, *, request_body: Any, first_call_number: int) -> ReplyPlan:
        """Resolve default tool-call ids (``call_<n>``) and the prompt-token figure.

        A request's ``max_completion_tokens`` / ``max_tokens`` is honoured as a real endpoint
        does: a text reply with more pieces (one piece = one token here) is cut to that many,
        with ``finish_reason="length"``.
        """
        reply = _capped(reply, request_body)
        ids = tuple(
            call.id if call.id is not None else f"call_{first_call_number + i}"
            for i, call in enumerate(reply.tool_calls)
        )
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = estimate_prompt_tokens(request_body)
        return cls(reply, ids, prompt)

    @property
    def content_pieces(self) -> tuple[str, ...]:
        """The content split into the pieces sent one per chunk."""
        return split_pieces(self.reply.content)

    @property
    def argument_pieces(self) -> tuple[tuple[str, ...], ...]:
        """For each tool call, its JSON arguments split into pieces."""
        return tuple(split_pieces(call.arguments_json) for call in self.reply.tool_calls)

    @property
    def completion_tokens(self) -> int:
        """Scripted figure, else pieces sent (content + arguments) plus reasoning tokens."""
        if self.reply.completion_tokens is not None:
            return self.reply.completion_tokens
        sent = len(self.content_pieces) + sum(len(p) for p in self.argument_pieces)
        return sent + self.reply.reasoning_tokens

    def usage(self) -> dict[str, Any]:
        """The usage object of this reply."""
        return usage_dict(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            cached_tokens=self.reply.cached_tokens,
            reasoning_tokens=self.reply.reasoning_tokens,
        )

    def events(
        self, encoder: ChunkEncoder, *, include_usage: bool, complete: bool = True
    ) -> Iterator[SseEvent]:
        """The SSE events of the streamed reply, in order.

        A role chunk, one chunk per content piece, per tool call a header chunk then one chunk
        per argument piece; then (when ``complete``) the ``finish_reason`` chunk, the usage chunk
        (when ``include_usage``) and ``[DONE]``.
        """
        pieces = self.content_pieces
        role = {"role": "assistant", "content": "" if pieces else None, "refusal": None}
        yield SseEvent(encoder.event(encoder.chunk(role)), paced=False)
        for piece in pieces:
            yield SseEvent(encoder.content(piece), paced=True)
        for index, (call, call_id, arg_pieces) in enumerate(
            zip(self.reply.tool_calls, self.call_ids, self.argument_pieces, strict=True)
        ):
            header = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            yield SseEvent(encoder.event(encoder.chunk({"tool_calls": [header]})), paced=True)
            for piece in arg_pieces:
                delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
                yield SseEvent(encoder.event(encoder.chunk(delta)), paced=True)
        if not complete:
            return
        finish = encoder.chunk({}, self.reply.resolved_finish_reason)
        yield SseEvent(encoder.event(finish), paced=False)
        if include_usage:
            yield SseEvent(encoder.event(encoder.usage_chunk(self.usage())), paced=False)
        yield SseEvent(DONE_EVENT, paced=False)

    def completion(self, encoder: ChunkEncoder, *, complete: bool = True) -> dict[str, Any]:
        """The non-streamed ``chat.completion`` body (``complete=False``: no finish, no usage)."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.reply.content if self.reply.content or not self.call_ids else None,
            "refusal": None,
        }
        if self.call_ids:
            message["tool_calls"] = _tool_calls_json(self.reply, self.call_ids)
        if not complete:
            return encoder.completion(message, None, None)
        return encoder.completion(message, self.reply.resolved_finish_reason, self.usage())


def _tool_calls_json(reply: Reply, call_ids: Sequence[str]) -> list[dict[str, Any]]:
    return [
        {
            "id": call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments_json},
        }
        for call, call_id in zip(reply.tool_calls, call_ids, strict=True)
    ]
