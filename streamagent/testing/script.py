"""What a :class:`~streamagent.testing.ScriptedOpenAIServer` says: replies, tool calls, faults.

Pure data, no I/O. A *script item* is one of:

* a :class:`Reply` — text and/or tool calls, optional usage figures, optional in-stream fault;
* a :class:`Fault` — the whole response is that fault (an HTTP error, or a default reply that
  stalls, breaks, or ends badly);
* a ``str`` — shorthand for ``Reply(content=that_string)``.

Scripts can also be written as JSON (``python -m streamagent.testing --script FILE.json``): a list
whose items are a string, a reply object or a fault object::

    [
      "Hello!",
      {"tool_calls": [{"name": "echo", "arguments": {"text": "hi"}, "id": "call_1"}]},
      {"content": "cut short", "fault": {"kind": "disconnect", "after_chunks": 3}},
      {"fault": {"kind": "http", "status": 429, "retry_after_seconds": 1}},
      {"content": "slow", "token_delay_seconds": 0.05, "prompt_tokens": 100, "cached_tokens": 20}
    ]

A reply object takes the keyword names of :class:`Reply` (``content``, ``tool_calls``,
``prompt_tokens``, ``cached_tokens``, ``completion_tokens``, ``reasoning_tokens``,
``finish_reason``, ``token_delay_seconds``, ``fault``). A fault object has a ``kind`` (``http``,
``stall``, ``disconnect``, ``malformed``, ``no_done``) and the keyword names of the matching
:class:`Fault` factory. An object with only a ``fault`` key is a bare fault.

Example:
    >>> from streamagent.testing import Fault, Reply, ToolCall
    >>> from streamagent.testing.script import parse_script, parse_script_item
    >>> parse_script(["hi"]) == [Reply("hi")]
    True
    >>> parse_script_item({"fault": {"kind": "http", "status": 500}}) == Fault.http(500)
    True
    >>> Reply(tool_calls=[ToolCall("echo", {"text": "hi"})]).resolved_finish_reason
    'tool_calls'
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import orjson

from streamagent.errors import InvalidInputError
from streamagent.testing.raw import RawReply

__all__ = [
    "DEFAULT_FAULT_TEXT",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "Reply",
    "ScriptItem",
    "ToolCall",
    "parse_script",
    "parse_script_item",
]

FaultKind = Literal["http", "stall", "disconnect", "malformed", "no_done"]

#: Text streamed by a bare stream fault (a ``Fault`` script item other than ``Fault.http``).
DEFAULT_FAULT_TEXT = "This scripted reply is interrupted by an injected fault on purpose."


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the scripted model makes.

    ``arguments`` given as a dict is JSON-encoded; a str is sent verbatim, so tests can send
    broken JSON. ``id`` defaults to ``call_<n>`` (``n`` counts the calls of the reply from 1).

    >>> ToolCall("add", {"a": 1}).arguments_json
    '{"a":1}'
    >>> ToolCall("add", '{"a": ').arguments_json
    '{"a": '
    """

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None

    @property
    def arguments_json(self) -> str:
        """The arguments exactly as they go on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return orjson.dumps(self.arguments).decode()


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault injected by the server. Build one with the class methods, not the constructor.

    Chunk counts (``after_chunks``) count the SSE ``data:`` events of a streamed response,
    including the first one (which carries ``role: assistant``); the HTTP headers always go out
    first. On a non-streamed request, ``stall`` delays the response, ``disconnect`` closes the
    connection without a response, ``malformed`` sends a truncated JSON body and ``no_done`` sends a
    completion with ``finish_reason: null`` and no usage.
    """

    kind: FaultKind
    status: int = 0
    retry_after_seconds: float | None = None
    retry_after_ms: int | None = None
    retry_after_http_date: bool = False
    message: str | None = None
    code: str | None = None
    seconds: float = 0.0
    after_chunks: int = 0

    @classmethod
    def http(
        cls,
        status: int,
        *,
        retry_after_seconds: float | None = None,
        retry_after_ms: int | None = None,
        retry_after_http_date: bool = False,
        message: str | None = None,
        code: str | None = None,
    ) -> Fault:
        """The whole response is an HTTP error with an OpenAI-style JSON body.

        ``retry_after_seconds`` sets ``Retry-After`` (as an HTTP date when
        ``retry_after_http_date``); ``retry_after_ms`` sets ``retry-after-ms``. ``code`` overrides
        the error code of the body (e.g. ``"context_length_exceeded"``).

        >>> Fault.http(429, retry_after_seconds=2).status
        429
        """
        if not 400 <= status <= 599:
            raise InvalidInputError(f"Fault.http status must be 400..599, got {status}")
        if retry_after_http_date and retry_after_seconds is None:
            raise InvalidInputError("retry_after_http_date needs retry_after_seconds")
        _check_non_negative("retry_after_seconds", retry_after_seconds)
        _check_non_negative("retry_after_ms", retry_after_ms)
        return cls(
            "http",
            status=status,
            retry_after_seconds=retry_after_seconds,
            retry_after_ms=retry_after_ms,
            retry_after_http_date=retry_after_http_date,
            message=message,
            code=code,
        )

    @classmethod
    def stall(cls, seconds: float, *, after_chunks: int = 0) -> Fault:
        """Stop sending for ``seconds`` after ``after_chunks`` chunks, then continue normally."""
        _check_non_negative("seconds", seconds)
        _check_non_negative("after_chunks", after_chunks)
        return cls("stall", seconds=float(seconds), after_chunks=after_chunks)

    @classmethod
    def disconnect(cls, *, after_chunks: int) -> Fault:
        """Cut the TCP connection after ``after_chunks`` chunks (an incomplete chunked body)."""
        _check_non_negative("after_chunks", after_chunks)
        return cls("disconnect", after_chunks=after_chunks)

    @classmethod
    def malformed(cls, *, after_chunks: int) -> Fault:
        """Send a ``data:`` line that is not JSON after ``after_chunks`` chunks, then end."""
        _check_non_negative("after_chunks", after_chunks)
        return cls("malformed", after_chunks=after_chunks)

    @classmethod
    def no_done(cls) -> Fault:
        """End the stream cleanly but without ``finish_reason``, usage or ``[DONE]``."""
        return cls("no_done")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from its JSON form ``{"kind": ..., **factory keywords}``."""
        options = dict(data)
        kind = options.pop("kind", None)
        try:
            if kind == "http":
                return cls.http(int(options.pop("status")), **options)
            if kind == "stall":
                return cls.stall(float(options.pop("seconds")), **options)
            if kind == "disconnect":
                return cls.disconnect(**options)
            if kind == "malformed":
                return cls.malformed(**options)
            if kind == "no_done" and not options:
                return cls.no_done()
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"invalid fault {dict(data)!r}: {exc}") from exc
        raise InvalidInputError(
            f"invalid fault {dict(data)!r}: kind must be one of "
            "http, stall, disconnect, malformed, no_done (no_done takes no options)"
        )


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted model turn.

    Usage defaults: ``prompt_tokens`` is estimated from the request (see
    :func:`streamagent.testing.wire.estimate_prompt_tokens`); ``completion_tokens`` is the number
    of content pieces plus tool-argument pieces sent, plus ``reasoning_tokens``.

    >>> Reply("hi").resolved_finish_reason
    'stop'
    """

    content: str = ""
    _: KW_ONLY
    tool_calls: Sequence[ToolCall] = ()
    prompt_tokens: int | None = None
    cached_tokens: int = 0
    completion_tokens: int | None = None
    reasoning_tokens: int = 0
    #: Responses API only: a reasoning summary streamed before the answer.
    reasoning_summary: str = ""
    finish_reason: str | None = None
    token_delay_seconds: float | None = None
    fault: Fault | None = None

    def __post_init__(self) -> None:
        _check_non_negative("token_delay_seconds", self.token_delay_seconds)
        _check_non_negative("cached_tokens", self.cached_tokens)
        _check_non_negative("reasoning_tokens", self.reasoning_tokens)
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))

    @property
    def resolved_finish_reason(self) -> str:
        """``finish_reason`` or its default: ``"tool_calls"`` with tool calls, else ``"stop"``."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reply:
        """Build a reply from its JSON form (see the module docstring)."""
        options = dict(data)
        try:
            calls = [
                ToolCall(str(c["name"]), c.get("arguments", {}), c.get("id"))
                for c in options.pop("tool_calls", ())
            ]
            fault = options.pop("fault", None)
            return cls(
                str(options.pop("content", "")),
                tool_calls=calls,
                fault=Fault.from_dict(fault) if fault is not None else None,
                **options,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidInputError(f"invalid reply {dict(data)!r}: {exc}") from exc


ScriptItem = Reply | Fault | str | RawReply


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received, recorded before it answered.

    ``headers`` has lower-case keys; ``body`` is the parsed JSON (``None`` when absent or invalid);
    ``received_at`` is :func:`time.monotonic` at arrival; ``peer`` is the client's ``host:port``
    (one per TCP connection: equal peers mean a reused connection).
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float = field(default_factory=time.monotonic)
    peer: str | None = None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """``body["messages"]`` (empty when the body has none)."""
        messages = self.body.get("messages") if isinstance(self.body, dict) else None
        return messages if isinstance(messages, list) else []

    @property
    def stream(self) -> bool:
        """Whether the client asked for a streamed response."""
        return isinstance(self.body, dict) and bool(self.body.get("stream"))

    @property
    def tools(self) -> list[dict[str, Any]]:
        """``body["tools"]`` (empty when the body has none)."""
        tools = self.body.get("tools") if isinstance(self.body, dict) else None
        return tools if isinstance(tools, list) else []

    @property
    def include_usage(self) -> bool:
        """Whether ``stream_options.include_usage`` is true."""
        options = self.body.get("stream_options") if isinstance(self.body, dict) else None
        return isinstance(options, dict) and bool(options.get("include_usage"))


def parse_script_item(item: Any) -> ScriptItem:
    """Validate one script item: a Reply, a Fault, a str, or their JSON (dict) form."""
    if isinstance(item, Reply | Fault | str | RawReply):
        return item
    if isinstance(item, Mapping):
        if set(item) == {"fault"}:
            fault = item["fault"]
            if not isinstance(fault, Mapping):
                raise InvalidInputError(f"invalid fault {fault!r}: expected an object")
            return Fault.from_dict(fault)
        return Reply.from_dict(item)
    raise InvalidInputError(
        f"invalid script item {item!r}: expected Reply, Fault, str or a JSON object"
    )


def parse_script(data: Any) -> list[ScriptItem]:
    """Validate a whole script (a JSON list of items, see the module docstring).

    >>> [item.content for item in parse_script(["a", {"content": "b"}])]
    ['a', 'b']
    """
    if not isinstance(data, list):
        raise InvalidInputError("a script must be a JSON list of items")
    return [_as_reply(parse_script_item(item)) for item in data]


def _as_reply(item: ScriptItem) -> ScriptItem:
    return Reply(item) if isinstance(item, str) else item


def _check_non_negative(name: str, value: float | None) -> None:
    if value is not None and value < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value}")
