"""Strict checkpoint serialization: LangGraph's serializer that refuses unknown types.

LangGraph's :class:`~langgraph.checkpoint.serde.jsonplus.JsonPlusSerializer` in strict mode
(``allowed_msgpack_modules=None``) only rebuilds a built-in allowlist of safe types (datetime,
Decimal, UUID, LangChain messages, LangGraph ``Send``/``Interrupt``/``Command``...) plus the
types LangGraph adds for the compiled graph's state schema (``with_allowlist``). For any other
type it logs a warning and returns the raw payload (a dict), revives ``lc`` constructor
envelopes or returns them raw, and silently returns ``None`` for unknown msgpack extensions.
:class:`StrictSerializer` raises :class:`UnsafeDeserializationError` for all of these, and for
``pickle`` payloads: data read from Redis never silently changes type, and never runs the
import of an unexpected class.

Example:
    >>> from decimal import Decimal
    >>> from langchain_core.messages import HumanMessage
    >>> serde = StrictSerializer()
    >>> serde.loads_typed(serde.dumps_typed([HumanMessage("hi", id="1"), Decimal("0.5")]))
    [HumanMessage(content='hi', additional_kwargs={}, response_metadata={}, id='1'), Decimal('0.5')]
"""

from __future__ import annotations

import importlib
import json
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ormsgpack
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_DELTA_SNAPSHOT,
    EXT_METHOD_SINGLE_ARG,
    EXT_NUMPY_ARRAY,
    EXT_PYDANTIC_V1,
    EXT_PYDANTIC_V2,
    JsonPlusSerializer,
)
from langgraph.types import Send

from streamagent._upstream.langgraph_private import SAFE_MSGPACK_METHODS, SAFE_MSGPACK_TYPES
from streamagent._upstream.langgraph_private import DeltaSnapshot as _DeltaSnapshot
from streamagent.errors import AgentRunError

# the message caches live in ``message_cache``; their names stay importable from here
from streamagent.memory.message_cache import (
    DecodeCache,
    EncodeCache,
    MessageTemplate,
    copy_message,
)

__all__ = [
    "DecodeCache",
    "EncodeCache",
    "MessageTemplate",
    "StrictSerializer",
    "UnsafeDeserializationError",
    "copy_message",
]

_MSGPACK_OPTS = ormsgpack.OPT_NON_STR_KEYS
# "lc" as a msgpack string in any of its encodings (fixstr, str8, str16, str32): a payload
# without it cannot hold an ``lc`` envelope, so only such payloads are walked after decoding
_LC_KEY = re.compile(rb"(?:\xa2|\xd9\x02|\xda\x00\x02|\xdb\x00\x00\x00\x02)lc")
_CONSTRUCTOR_CODES = frozenset(
    {EXT_CONSTRUCTOR_SINGLE_ARG, EXT_CONSTRUCTOR_POS_ARGS, EXT_CONSTRUCTOR_KW_ARGS}
)
_PYDANTIC_CODES = frozenset({EXT_PYDANTIC_V1, EXT_PYDANTIC_V2})
_KNOWN_CODES = (
    _CONSTRUCTOR_CODES
    | _PYDANTIC_CODES
    | {EXT_METHOD_SINGLE_ARG, EXT_NUMPY_ARRAY, EXT_DELTA_SNAPSHOT}
)


class _Refusal(threading.local):
    error: UnsafeDeserializationError | None = None


_refusal = _Refusal()


class UnsafeDeserializationError(AgentRunError):
    """Checkpoint data was refused: a type outside the deserialization allowlist, a pickle
    payload, an ``lc`` constructor envelope (any version), an unknown msgpack extension,
    or an allowed type whose stored form cannot be rebuilt. Nothing is imported or run
    for a refused value, and it never loads as its raw payload."""


_ALLOW_HINT = (
    "If the type is yours and trusted, pass "
    "serde=StrictSerializer(allowed_msgpack_modules=[(module, name)]) to the saver"
)


def _is_envelope(value: Mapping[Any, Any]) -> bool:
    """An ``lc`` serialization envelope (``{"lc": <version>, "type": ..., ...}``)."""
    return "lc" in value and "type" in value


def _envelope_name(value: Mapping[Any, Any]) -> str:
    ident = value.get("id")
    name = ".".join(map(str, ident)) if isinstance(ident, list) else "?"
    return f"lc:{value.get('lc')!r} {value.get('type')!r} envelope of {name}"


def _refuse_envelopes(value: Any) -> None:
    """Raise if ``value`` (decoded msgpack) holds an ``lc`` envelope anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            if _is_envelope(item):
                raise UnsafeDeserializationError(
                    f"refused to deserialize an {_envelope_name(item)} from a checkpoint: "
                    "constructor envelopes are never revived"
                )
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif isinstance(item, BaseMessage | _DeltaSnapshot):
            stack.append(item.__dict__)
        elif isinstance(item, Mapping):
            stack.append(dict(item))
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)


def _json_hook(value: dict[str, Any]) -> Any:
    if _is_envelope(value):
        raise UnsafeDeserializationError(
            f"refused to deserialize an {_envelope_name(value)} from a checkpoint: "
            "constructor envelopes are never revived"
        )
    return value


def _refuse(message: str) -> UnsafeDeserializationError:
    return UnsafeDeserializationError(f"refused to deserialize {message}")


def _construct(code: int, module: str, name: str, cls: Any, payload: Any) -> Any:
    """Build an allowlisted type from its stored arguments (LangGraph's encodings)."""
    if code == EXT_CONSTRUCTOR_SINGLE_ARG:
        return cls(payload)
    if code == EXT_CONSTRUCTOR_POS_ARGS:
        if (module, name) == ("langgraph.types", "Send"):
            return Send(payload[0], payload[1], timeout=payload[2] if len(payload) > 2 else None)
        return cls(*payload)
    if code == EXT_CONSTRUCTOR_KW_ARGS:
        return cls(**payload)
    try:  # pydantic v1/v2: validated first, like LangGraph's own hook
        return cls(**payload)
    except Exception:  # noqa: BLE001 - model_construct is LangGraph's documented fallback
        build = cls.model_construct if code == EXT_PYDANTIC_V2 else cls.construct
        return build(**payload)


def _numpy_array(parts: Any) -> Any:
    import numpy as np

    dtype_str, shape, order, buf = parts
    dtype = np.dtype(dtype_str)
    if dtype.hasobject:
        raise _refuse("a numpy array of Python objects from a checkpoint")
    return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order)


def _strict_ext_hook(
    allowed: set[tuple[str, ...]] | bool | None,
) -> Callable[[int, bytes], Any]:
    """A msgpack extension hook that rebuilds allowlisted types and raises for anything
    else (LangGraph's own hook returns the raw payload or ``None`` instead)."""

    def check(code: int, parts: list[Any]) -> None:
        module, name = parts[0], parts[1]
        if code == EXT_METHOD_SINGLE_ARG:
            method = parts[3] if len(parts) > 3 else None
            if (module, name, method) not in SAFE_MSGPACK_METHODS:
                raise _refuse(
                    f"{module}.{name}.{method} from a checkpoint: method calls outside "
                    "LangGraph's safe list are never made"
                )
            return
        key = (module, name)
        if key in SAFE_MSGPACK_TYPES:
            return
        if allowed is True or (isinstance(allowed, set) and key in allowed):
            return
        raise _refuse(f"{module}.{name} from a checkpoint: not on the allowlist. {_ALLOW_HINT}")

    def rebuild(code: int, data: bytes) -> Any:
        if code not in _KNOWN_CODES:
            raise _refuse(f"a checkpoint value: unknown msgpack extension {code}")
        try:
            parts = ormsgpack.unpackb(data, ext_hook=hook, option=_MSGPACK_OPTS)
        except ValueError as exc:
            if _refusal.error is not None:
                raise _refusal.error from None
            raise _refuse(
                f"a checkpoint value: malformed msgpack extension {code} ({exc})"
            ) from None
        if code == EXT_DELTA_SNAPSHOT:
            return _DeltaSnapshot(parts)
        if not isinstance(parts, list) or len(parts) < 3 or code == EXT_NUMPY_ARRAY:
            if code == EXT_NUMPY_ARRAY:
                return _numpy_array(parts)
            raise _refuse(f"a checkpoint value: malformed msgpack extension {code}")
        check(code, parts)
        module, name, payload = parts[0], parts[1], parts[2]
        cls = getattr(sys.modules.get(module) or importlib.import_module(module), name)
        if code == EXT_METHOD_SINGLE_ARG:
            return getattr(cls, str(parts[3]))(payload)
        return _construct(code, module, name, cls, payload)

    def hook(code: int, data: bytes) -> Any:
        # ormsgpack turns an exception raised here into a bare ValueError("ext_hook
        # failed"): the refusal is kept aside for the caller to raise again
        try:
            return rebuild(code, data)
        except UnsafeDeserializationError as exc:
            if _refusal.error is None:
                _refusal.error = exc
            raise
        except Exception as exc:
            refused = _refuse(
                f"a checkpoint value: msgpack extension {code} could not be rebuilt "
                f"({type(exc).__name__}: {exc}); it is never returned as its raw payload"
            )
            if _refusal.error is None:
                _refusal.error = refused
            raise refused from exc

    return hook


class StrictSerializer(JsonPlusSerializer):
    """``JsonPlusSerializer`` in strict mode that raises on anything it will not rebuild.

    Refused with :class:`UnsafeDeserializationError`: types outside the allowlist (LangGraph's
    safe list, ``allowed_msgpack_modules`` and what LangGraph adds for the compiled graph's
    state schema), ``pickle`` payloads, ``lc`` constructor envelopes of any version (in
    ``json`` or ``msgpack`` values), unknown msgpack extension codes, unknown value types,
    and allowed types whose stored form cannot be rebuilt. Nothing loads as a raw dict.
    ``allowed_msgpack_modules`` adds ``(module, name)`` pairs (or classes) to the safe list.
    """

    def __init__(self, *, allowed_msgpack_modules: Iterable[tuple[str, ...] | type] = ()) -> None:
        extra = tuple(allowed_msgpack_modules)
        super().__init__(allowed_msgpack_modules=extra or None)
        # the superclass's allowlist (a private attribute: read guarded; absent = none extra)
        self._unpack_ext_hook = _strict_ext_hook(getattr(self, "_allowed_msgpack_modules", None))

    def with_msgpack_allowlist(
        self, extra_allowlist: Iterable[tuple[str, ...] | type]
    ) -> JsonPlusSerializer:
        """A clone with a merged allowlist (used by LangGraph for the state schema)."""
        clone = super().with_msgpack_allowlist(extra_allowlist)
        if clone is not self:
            allowed = getattr(clone, "_allowed_msgpack_modules", None)
            clone._unpack_ext_hook = _strict_ext_hook(allowed)
        return clone

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Deserialize, raising :class:`UnsafeDeserializationError` for refused data."""
        type_, payload = data
        if type_ == "msgpack":
            _refusal.error = None
            try:
                value = ormsgpack.unpackb(
                    payload, ext_hook=self._unpack_ext_hook, option=_MSGPACK_OPTS
                )
            except ValueError as exc:
                refused, _refusal.error = _refusal.error, None
                if refused is not None:
                    raise refused from None
                raise UnsafeDeserializationError(
                    f"refused to deserialize a malformed msgpack checkpoint value "
                    f"({type(exc).__name__})"
                ) from None
            if _LC_KEY.search(payload):
                _refuse_envelopes(value)
            return value
        if type_ == "json":
            try:
                return json.loads(payload, object_hook=_json_hook)
            except ValueError as exc:
                raise UnsafeDeserializationError(
                    f"refused to deserialize a malformed json checkpoint value ({exc})"
                ) from None
        if type_ in ("null", "bytes", "bytearray"):
            return super().loads_typed(data)
        if type_ == "pickle":
            raise UnsafeDeserializationError(
                "refused to deserialize a pickle payload from a checkpoint: pickle can run "
                "arbitrary code and is never loaded"
            )
        raise UnsafeDeserializationError(
            f"refused to deserialize a checkpoint value of unknown type {type_[:40]!r}"
        )
