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
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.base import SerializerProtocol

from streamagent.memory.serde import EncodeCache

__all__ = ["REF_LEN", "MessageEncoder", "check_name", "pack", "unpack"]

#: length of a message ref (hex chars)
REF_LEN = 24


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


@dataclass
class MessageEncoder:
    """The messages of one write operation: their refs, and the values to store by ref
    (serialized once per message object: see :class:`EncodeCache`)."""

    cache: EncodeCache
    values: dict[str, bytes] = field(default_factory=dict)

    def encode(self, serde: SerializerProtocol, value: Any) -> list[str] | None:
        """The refs of the messages of ``value`` (their values added to :attr:`values`), or
        None when ``value`` is not a non-empty plain list of messages (checked on the way:
        a cached hit is a message)."""
        if type(value) is not list or not value:
            return None
        refs: list[str] = []
        found: dict[str, bytes] = {}
        for message, hit in zip(value, self.cache.get_many(value), strict=True):
            if hit is None:
                if not isinstance(message, BaseMessage):
                    return None
                type_, data = serde.dumps_typed(message)
                packed = pack(type_, data)
                ref = hashlib.blake2b(packed, digest_size=REF_LEN // 2).hexdigest()
                self.cache.put(message, ref, packed)
            else:
                ref, packed = hit
            found[ref] = packed
            refs.append(ref)
        self.values.update(found)
        return refs
