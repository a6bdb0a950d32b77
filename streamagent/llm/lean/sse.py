"""Incremental Server-Sent Events decoding for Chat Completions streams (pure, no I/O).

Feed the response body's byte chunks in order; get back the decoded JSON payload of every
complete ``data:`` event. Line splitting (CR, LF, CRLF — also across chunk boundaries),
multi-line ``data`` fields, comments and ``event:`` fields follow the SSE specification the
same way the ``openai`` SDK's decoder does; ``data: [DONE]`` ends the stream. An event that
is still open when the body ends is dropped, as the SDK drops it. Payloads are parsed with
``orjson``; malformed JSON raises :class:`orjson.JSONDecodeError` (a
:class:`json.JSONDecodeError`).

:meth:`SseDecoder.feed_raw` returns the events' undecoded ``data`` bytes instead, to be parsed
one at a time as they are used (:func:`decode_payload`): a read that returns a backlog of
hundreds of events (a client that fell behind) then holds compact ``bytes``, which the
garbage collector does not track, instead of hundreds of parsed dicts per stream — and an event
before a malformed one is still delivered before the error, as the SDK's iterator does.

Example:
    >>> decoder = SseDecoder()
    >>> decoder.feed(b'data: {"a": 1}\\n\\ndata: {"b"')
    [{'a': 1}]
    >>> decoder.feed(b': 2}\\n\\ndata: [DONE]\\n\\n')
    [{'b': 2}]
    >>> decoder.done
    True
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["SseDecoder", "decode_payload"]

_DONE = b"[DONE]"

#: Parses one event's ``data`` (``orjson.loads``; raises ``json.JSONDecodeError``).
decode_payload = orjson.loads


class SseDecoder:
    """Turns SSE bytes into JSON payloads; ``done`` is set once ``[DONE]`` arrived."""

    __slots__ = ("_data", "_event", "_skip_lf", "_tail", "done")

    def __init__(self) -> None:
        self._tail = b""
        self._data: list[bytes] = []
        self._event: bytes | None = None
        self._skip_lf = False
        self.done = False

    def feed(self, data: bytes) -> list[Any]:
        """The payloads of the events completed by ``data`` (empty after ``[DONE]``)."""
        return [orjson.loads(payload) for payload in self.feed_raw(data)]

    def feed_raw(self, data: bytes) -> list[bytes]:
        """The undecoded ``data`` of the events completed by ``data`` (see the module)."""
        if self.done:
            return []
        if self._skip_lf:  # the previous chunk ended in CR: an LF right after it pairs with it
            self._skip_lf = False
            if data.startswith(b"\n"):
                data = data[1:]
        if self._tail:
            data = self._tail + data
        if b"\r" in data:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        self._tail = lines.pop()
        out: list[bytes] = []
        pending = self._data
        for line in lines:
            if not line:
                if pending or self._event is not None:
                    payload = pending[0] if len(pending) == 1 else b"\n".join(pending)
                    pending.clear()
                    self._event = None
                    if payload.startswith(_DONE):
                        self.done = True
                        return out
                    out.append(payload)
            elif line.startswith(b"data:"):
                value = line[5:]
                pending.append(value[1:] if value.startswith(b" ") else value)
            elif line.startswith(b"event:"):
                value = line[6:]
                self._event = value[1:] if value.startswith(b" ") else value
            elif line == b"data":  # a field name without a colon has an empty value
                pending.append(b"")
            # comments (":"), "id:", "retry:" and unknown fields carry nothing we use
        return out
