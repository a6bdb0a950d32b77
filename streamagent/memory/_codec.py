"""The stored encodings of the savers (no I/O): typed values, message refs, names.

A stored value is ``type\\0payload`` (the serializer's type tag, or ``R``/``D``/``S`` for
message lists, see ``_lua.py``). Each message is stored once, under a 24-hex-char BLAKE2b
digest of its serialized form (which includes the message id): its *ref*.

Example:
    >>> unpack(pack("msgpack", b"x"))
    ('msgpack', b'x')
    >>> check_name("channel", "a\\x00b")
    Traceback (most recent call last):
    ...
    ValueError: channel must not contain NUL, \\x01 or \\x02 characters: 'a\\x00b'
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol

from streamagent.memory.serde import EncodeCache

__all__ = ["REF_LEN", "MessageEncoder", "check_name", "is_message_list", "pack", "unpack"]

#: length of a message ref (hex chars)
REF_LEN = 24
_MESSAGE = repeat(BaseMessage)


def check_name(kind: str, value: str) -> str:
    """``value``, refused when it holds a separator character of the stored encodings."""
    if "\x00" in value or "\x01" in value or "\x02" in value:
        raise ValueError(f"{kind} must not contain NUL, \\x01 or \\x02 characters: {value!r}")
    return value


def pack(type_: str, payload: bytes) -> bytes:
    """A typed value as stored."""
    return type_.encode() + b"\x00" + payload


def unpack(value: bytes) -> tuple[str, bytes]:
    """The type tag and payload of a stored value."""
    type_, _, payload = value.partition(b"\x00")
    return type_.decode(), payload


def is_message_list(value: Any) -> bool:
    """A non-empty plain list of messages (stored as refs)."""
    return type(value) is list and bool(value) and all(map(isinstance, value, _MESSAGE))


@dataclass
class MessageEncoder:
    """The messages of one write operation: their refs, and the values to store by ref
    (serialized once per message object: see :class:`EncodeCache`)."""

    cache: EncodeCache
    values: dict[str, bytes] = field(default_factory=dict)

    def encode(self, serde: SerializerProtocol, messages: list[BaseMessage]) -> list[str]:
        """The refs of ``messages`` (their values are added to :attr:`values`)."""
        refs = []
        for message, hit in zip(messages, self.cache.get_many(messages), strict=True):
            if hit is None:
                type_, data = serde.dumps_typed(message)
                packed = pack(type_, data)
                ref = hashlib.blake2b(packed, digest_size=REF_LEN // 2).hexdigest()
                self.cache.put(message, ref, packed)
            else:
                ref, packed = hit
            self.values[ref] = packed
            refs.append(ref)
        return refs
