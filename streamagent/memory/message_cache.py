"""The savers' message caches (no I/O): deserialized messages by ref, handed out as copies
(:class:`MessageTemplate`, :class:`DecodeCache`), and the serialized form of message objects
already encoded (:class:`EncodeCache`).

Example:
    >>> from langchain_core.messages import AIMessage
    >>> template = MessageTemplate(AIMessage("hi", id="1", additional_kwargs={"k": [1]}))
    >>> copy = template.copy()
    >>> copy.additional_kwargs["k"].append(2)
    >>> template.message.additional_kwargs, copy == template.message
    ({'k': [1]}, False)
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["DecodeCache", "EncodeCache", "MessageTemplate", "copy_message"]

_ATOMIC: frozenset[type] = frozenset({str, int, float, bool, bytes, type(None)})
_set = object.__setattr__
# pydantic's slot setters (what object.__setattr__ finds for these names, looked up once)
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _fresh(value: Any) -> Any:
    """An independent copy of a field value (immutable atoms are shared)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is dict and not value:
        return {}
    if kind is list and not value:
        return []
    return copy.deepcopy(value)


def copy_message(message: BaseMessage) -> BaseMessage:
    """A copy of ``message`` that shares no mutable object with it.

    Equivalent to ``copy.deepcopy`` for messages (every container field - ``content`` as a
    list, ``additional_kwargs``, ``tool_calls``, extra fields... - is copied; strings and
    numbers are immutable and shared), several times faster for the usual empty containers.

    >>> from langchain_core.messages import AIMessage
    >>> a = AIMessage("hi", id="1", additional_kwargs={"k": [1]})
    >>> b = copy_message(a)
    >>> b.additional_kwargs["k"].append(2)
    >>> (a == AIMessage("hi", id="1", additional_kwargs={"k": [1]}), b.additional_kwargs)
    (True, {'k': [1, 2]})
    """
    return MessageTemplate(message).copy()


class MessageTemplate:
    """A message that is never handed out, only copied (:meth:`copy`).

    Which fields hold containers is computed once, so a copy is one ``dict`` copy plus a new
    object per container field (an empty ``{}``/``[]`` for empty ones, ``copy.deepcopy``
    for the others). The template must not be mutated after it was wrapped.
    """

    __slots__ = (
        "_cls",
        "_empty_dicts",
        "_empty_lists",
        "_extra",
        "_fields",
        "_fields_set",
        "_nested",
        "_private",
        "message",
    )

    def __init__(self, message: BaseMessage) -> None:
        self.message = message
        self._cls = type(message)
        self._fields = message.__dict__
        self._fields_set = message.__pydantic_fields_set__
        self._extra = message.__pydantic_extra__
        self._private = message.__pydantic_private__
        empty_dicts, empty_lists, nested = [], [], []
        for name, value in message.__dict__.items():
            kind = type(value)
            if kind in _ATOMIC:
                continue
            if kind is dict and not value:
                empty_dicts.append(name)
            elif kind is list and not value:
                empty_lists.append(name)
            else:
                nested.append(name)
        self._empty_dicts = tuple(empty_dicts)
        self._empty_lists = tuple(empty_lists)
        self._nested = tuple(nested)

    def copy(self) -> BaseMessage:
        """A new message equal to the template, sharing no mutable object with it."""
        new = object.__new__(self._cls)  # what pydantic's __copy__ does, without its checks
        fields = self._fields.copy()
        for name in self._empty_dicts:
            fields[name] = {}
        for name in self._empty_lists:
            fields[name] = []
        for name in self._nested:
            fields[name] = copy.deepcopy(fields[name])
        _set(new, "__dict__", fields)
        _set_fields_set(new, set(self._fields_set))
        _set_extra(new, _fresh_items(self._extra))
        _set_private(new, _fresh_items(self._private))
        return new


def _fresh_items(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    if not values:
        return {}
    return {k: _fresh(v) for k, v in values.items() if v is not PydanticUndefined}


class DecodeCache:
    """Bounded LRU of deserialized messages by content ref (the digest of their stored bytes).

    A ref names immutable bytes, so the message decoded from it never changes. Entries are
    :class:`MessageTemplate` objects: readers hand out their copies, never a template, so a
    caller mutating what it got cannot change what later reads return. An entry is only used
    by the serializer that decoded it (a saver cloned by ``with_allowlist`` has another
    serializer: strict deserialization is never bypassed through the cache).
    ``max_bytes`` bounds the stored size of the cached messages (0 disables the cache).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[SerializerProtocol, MessageTemplate, int]] = (
            OrderedDict()
        )
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def templates(
        self, serde: SerializerProtocol, refs: Iterable[str]
    ) -> dict[str, MessageTemplate]:
        """The cached templates of ``refs`` decoded by ``serde``."""
        out: dict[str, MessageTemplate] = {}
        with self._lock:
            entries = self._entries
            for ref in refs:
                entry = entries.get(ref)
                if entry is not None and entry[0] is serde:
                    entries.move_to_end(ref)
                    out[ref] = entry[1]
        return out

    def put(
        self, serde: SerializerProtocol, ref: str, message: BaseMessage, size: int
    ) -> MessageTemplate:
        """Keep ``message`` as the template of ``ref`` (the caller must not hand it out,
        only copies: the returned template's :meth:`~MessageTemplate.copy`)."""
        template = MessageTemplate(message)
        if size > self.max_bytes:
            return template
        with self._lock:
            old = self._entries.pop(ref, None)
            if old is not None:
                self._bytes -= old[2]
            self._entries[ref] = (serde, template, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, _, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return template

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0


class EncodeCache:
    """Serialized form of message objects this process already encoded, by object identity.

    An entry is used only while the object is alive and still has the same ``id`` and the
    same ``content`` object, so replacing a message or its content re-encodes it. Messages in
    LangGraph state are values: mutating nested fields (``additional_kwargs``...) of a message
    that was already checkpointed, in place, is not detected.
    """

    def __init__(self, size: int = 50_000) -> None:
        self._entries: OrderedDict[int, tuple[Any, Any, Any, tuple[str, bytes]]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, message: BaseMessage) -> tuple[str, bytes] | None:
        """``(ref, packed)`` of ``message`` if this object was encoded and is unchanged."""
        return self.get_many([message])[0]

    def get_many(self, messages: Sequence[BaseMessage]) -> list[tuple[str, bytes] | None]:
        """:meth:`get` of each message (one lock acquisition)."""
        get = self._entries.get
        out: list[tuple[str, bytes] | None] = []
        with self._lock:
            for message in messages:
                entry = get(id(message))
                if (
                    entry is not None
                    and entry[0]() is message
                    and message.id == entry[1]
                    and message.content is entry[2]
                ):
                    out.append(entry[3])
                else:
                    out.append(None)
        return out

    def put(self, message: BaseMessage, ref: str, packed: bytes) -> None:
        """Remember the encoding of ``message``."""
        try:
            ref_obj = weakref.ref(message)
        except TypeError:
            return
        with self._lock:
            self._entries[id(message)] = (ref_obj, message.id, message.content, (ref, packed))
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)
