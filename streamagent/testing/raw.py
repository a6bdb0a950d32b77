"""Exact bytes for the scripted server to send: replaying what a real server sent.

Real OpenAI-compatible servers differ from the reference in small ways (llama.cpp's server
repeats the tool name in every streamed delta and sends no usage; some servers answer 200 with
an empty event stream or leave out ``finish_reason``). A :class:`RawReply` script item makes
:class:`~streamagent.testing.ScriptedOpenAIServer` answer with exactly the bytes given, so a
test replays such a response byte for byte. :func:`sse` builds an event-stream body from
JSON objects.

Example:
    >>> body = sse({"choices": []}, done=True)
    >>> body
    b'data: {"choices":[]}\\n\\ndata: [DONE]\\n\\n'
    >>> RawReply(body).status
    200
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Any

import orjson

__all__ = ["RawReply", "sse"]


@dataclass(frozen=True, slots=True)
class RawReply:
    """The whole HTTP response, as given: ``status``, ``content_type`` and ``body`` bytes."""

    body: bytes
    _: KW_ONLY
    status: int = 200
    content_type: str = "text/event-stream"


def sse(*events: Any, done: bool = True) -> bytes:
    """An SSE body: one ``data:`` event per JSON object (``bytes`` are sent as they are),
    then ``data: [DONE]`` unless ``done`` is false."""
    parts = [
        event if isinstance(event, bytes) else b"data: " + orjson.dumps(event) + b"\n\n"
        for event in events
    ]
    if done:
        parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)
