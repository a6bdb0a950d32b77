"""Pure helpers of the Redis stores (no I/O): errors, validation, keys, documents, filters.

Redis layout (storage schema 2) of one namespace ``ns`` (labels joined by ``.``, escaped
``E``) under the key prefix ``P``; every key of a namespace contains the hash tag ``{P:E}``
(one Cluster slot)::

    {P:E}:d:<key>      STRING  "<ttl ms>\\n<created µs>\\n<updated µs>\\n<JSON value>"
    P:v:{P:E}:<i>:<key> HASH   vector i of the item: vec (float32), pfx (namespace-prefix
                               tags); vector 0 also n (the item's number of vectors)
    {P:E}:idx          ZSET    item key -> expiry (ms since epoch, server clock; inf = none)
    {P:E}:ver          STRING  a token renewed by every write (keeps client caches honest)
    P:namespaces       ZSET    "a.b.c" -> expiry of the namespace's last item (a superset)
    P:schema           STRING  the storage schema ("2")

An item's ``d`` and ``v`` keys get the same PEXPIRE; ``idx`` and ``ver`` expire with the
namespace's last item, so nothing outlives its data. The vector hashes share the prefix
``P:v:`` so that a server's vector index (``FT.CREATE ... ON HASH PREFIX 1 P:v:``) sees
exactly them, and stay in the namespace's slot (the hash tag is the first ``{...}``).

Example:
    >>> keys = NamespaceKeys.of("streamagent:store", ("users", "alice"))
    >>> keys.doc("profile"), keys.idx
    ('{streamagent:store:users.alice}:d:profile', '{streamagent:store:users.alice}:idx')
    >>> keys.vec("profile")
    'streamagent:store:v:{streamagent:store:users.alice}:0:profile'
    >>> len(prefix_tags(("users", "alice")).split(","))
    2
    >>> validate_filter({"age": {"$gte": 18}, "city": "Paris"})
    >>> encode_value({"a": 1})
    '{"a":1}'
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from langgraph.store.base import InvalidNamespaceError

from streamagent.errors import InvalidInputError

__all__ = [
    "Call",
    "Embed",
    "Plan",
    "Wait",
    "FILTER_OPERATORS",
    "NAMESPACE_SEPARATOR",
    "CompiledFilter",
    "Doc",
    "NamespaceKeys",
    "StoreInputError",
    "StoreNamespaceError",
    "decode_doc",
    "encode_value",
    "from_micros",
    "join_namespace",
    "matches_filter",
    "namespace_matches",
    "prefix_tag",
    "prefix_tags",
    "split_namespace",
    "unescape",
    "validate_filter",
    "validate_namespace",
]

#: Labels of a namespace are joined with this character in Redis, so no label may contain it.
NAMESPACE_SEPARATOR = "."
#: The comparison operators of LangGraph's store filters (as ``InMemoryStore`` and
#: ``PostgresStore`` implement them).
FILTER_OPERATORS = frozenset({"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"})
_ORDERING = frozenset({"$gt", "$gte", "$lt", "$lte"})


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Call:
    """One Redis call: a script by name (keys, args) or, with ``script=None``, a command."""

    script: str | None
    keys: tuple[str, ...] = ()
    args: tuple[Any, ...] = ()
    #: a Redis error reply becomes the answer instead of failing the round (probes)
    errors_as_values: bool = False


@dataclass(frozen=True, slots=True)
class Embed:
    """Embed ``texts`` (as documents, or as one query)."""

    texts: list[str]
    query: bool = False


@dataclass(frozen=True, slots=True)
class Wait:
    """Sleep this long before the plan goes on (setup polls an index build)."""

    seconds: float


Plan = Generator[list[Call] | Embed | Wait, Any, T]


class StoreInputError(InvalidInputError, ValueError):
    """Bad input to a store operation (value, filter, query, TTL, limit); nothing was stored."""


class StoreNamespaceError(StoreInputError, InvalidNamespaceError):
    """An invalid namespace: empty, an empty label, or a label with ``.`` or NUL."""


def validate_namespace(namespace: Any, *, allow_empty: bool = False) -> tuple[str, ...]:
    """``namespace`` as a tuple of valid labels, else :class:`StoreNamespaceError`.

    >>> validate_namespace(["users", "alice"])
    ('users', 'alice')
    """
    if not isinstance(namespace, tuple | list):
        raise StoreNamespaceError(f"a namespace is a tuple of strings, not {type(namespace)}")
    labels = tuple(namespace)
    if not labels and not allow_empty:
        raise StoreNamespaceError("the namespace is empty: give at least one label")
    for label in labels:
        if not isinstance(label, str):
            raise StoreNamespaceError(
                f"namespace labels are strings, got {type(label).__name__} in {labels!r}"
            )
        if not label:
            raise StoreNamespaceError(f"empty label in namespace {labels!r}")
        if NAMESPACE_SEPARATOR in label:
            raise StoreNamespaceError(
                f"namespace label {label!r} in {labels!r} contains "
                f"{NAMESPACE_SEPARATOR!r}, the separator"
            )
        if "\x00" in label:
            raise StoreNamespaceError(f"namespace label {label!r} contains a NUL byte")
    return labels


def join_namespace(namespace: tuple[str, ...]) -> str:
    """The registry form of a namespace: its labels joined by ``.``."""
    return NAMESPACE_SEPARATOR.join(namespace)


def split_namespace(joined: str) -> tuple[str, ...]:
    """Inverse of :func:`join_namespace`."""
    return tuple(joined.split(NAMESPACE_SEPARATOR))


def _escape(text: str) -> str:
    # braces would end the hash tag early; escaping keeps key names injective
    return text.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def unescape(text: str) -> str:
    """Inverse of the key-name escaping of namespaces (``%7B`` -> ``{`` ...)."""
    return text.replace("%7B", "{").replace("%7D", "}").replace("%25", "%")


def prefix_tag(namespace: tuple[str, ...]) -> str:
    """A short hex digest naming one namespace prefix in a vector index's TAG field
    (a collision only widens what the index returns: results are re-checked)."""
    return hashlib.blake2b(join_namespace(namespace).encode(), digest_size=8).hexdigest()


@functools.lru_cache(maxsize=4096)
def prefix_tags(namespace: tuple[str, ...]) -> str:
    """The ``pfx`` TAG value of a vector: the tags of every prefix of ``namespace``."""
    return ",".join(prefix_tag(namespace[:n]) for n in range(1, len(namespace) + 1))


@dataclass(frozen=True, slots=True)
class NamespaceKeys:
    """The Redis key names of one namespace (all in one hash-tag slot)."""

    namespace: tuple[str, ...]
    tag: str
    key_prefix: str = ""

    @classmethod
    def of(cls, key_prefix: str, namespace: tuple[str, ...]) -> NamespaceKeys:
        tag = "{" + key_prefix + ":" + _escape(join_namespace(namespace)) + "}"
        return cls(namespace, tag, key_prefix)

    @property
    def idx(self) -> str:
        return self.tag + ":idx"

    @property
    def ver(self) -> str:
        return self.tag + ":ver"

    @property
    def doc_prefix(self) -> str:
        return self.tag + ":d:"

    @property
    def vec_prefix(self) -> str:
        """Vector ``i`` of item ``key`` is the hash ``vec_prefix + f"{i}:{key}"``."""
        return self.key_prefix + ":v:" + self.tag + ":"

    def doc(self, key: str) -> str:
        return self.tag + ":d:" + key

    def vec(self, key: str, i: int = 0) -> str:
        """The hash of the item's vector ``i`` (vector 0 also holds the count ``n``)."""
        return f"{self.key_prefix}:v:{self.tag}:{i}:{key}"


def encode_value(value: Any) -> str:
    """Strict JSON of an item value (a mapping with string keys), else StoreInputError."""
    if not isinstance(value, Mapping):
        raise StoreInputError(f"a store value is a dict, not {type(value).__name__}")
    _check_keys(value)
    try:
        return json.dumps(dict(value), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreInputError(f"the value is not JSON-serializable: {exc}") from exc


def _check_keys(value: Any) -> None:
    """JSON objects have string keys; json.dumps would turn ``1`` into ``"1"`` silently."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for key, inner in item.items():
                if not isinstance(key, str):
                    raise StoreInputError(f"value keys must be strings, got {key!r}")
                stack.append(inner)
        elif isinstance(item, list | tuple):
            stack.extend(item)


def from_micros(micros: int) -> datetime:
    """A UTC datetime from microseconds since the epoch."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Doc:
    """A decoded item document."""

    key: str
    value: dict[str, Any]
    ttl_ms: int
    created_us: int
    updated_us: int


def decode_doc(key: str, raw: bytes | str) -> Doc:
    """Parse ``"<ttl>\\n<created>\\n<updated>\\n<json>"``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    ttl, created, updated, body = text.split("\n", 3)
    return Doc(key, json.loads(body), int(ttl), int(created), int(updated))


def validate_filter(filter: Mapping[str, Any] | None) -> None:
    """Raise :class:`StoreInputError` for an unknown ``$operator`` or a bad operand."""
    if filter is None:
        return
    if not isinstance(filter, Mapping):
        raise StoreInputError(f"a filter is a dict, not {type(filter).__name__}")
    for field, expected in filter.items():
        _validate_condition(str(field), expected)


def _validate_condition(field: str, expected: Any) -> None:
    if isinstance(expected, Mapping):
        operators = [k for k in expected if isinstance(k, str) and k.startswith("$")]
        if not operators:
            for sub, value in expected.items():
                _validate_condition(f"{field}.{sub}", value)
            return
        for op, operand in expected.items():
            if op not in FILTER_OPERATORS:
                raise StoreInputError(
                    f"unknown filter operator {op!r} on {field!r}; "
                    f"supported: {', '.join(sorted(FILTER_OPERATORS))}"
                )
            if op in _ORDERING and not _is_number(operand):
                raise StoreInputError(f"{op} on {field!r} needs a number, got {operand!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def matches_filter(value: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether an item value passes a (validated) filter, as LangGraph's stores compare.

    >>> matches_filter({"age": 30, "tags": ["a"]}, {"age": {"$gt": 18, "$ne": 40}, "tags": ["a"]})
    True
    """
    if not filter:
        return True
    return all(_compare(value.get(k), expected) for k, expected in filter.items())


class CompiledFilter:
    """A validated filter as a fast predicate over item values (plain equalities first).

    >>> check = CompiledFilter({"group": 3, "n": {"$gt": 1}})
    >>> check({"group": 3, "n": 2}), check({"group": 4, "n": 2})
    (True, False)
    """

    __slots__ = ("equal", "other")

    def __init__(self, filter: Mapping[str, Any]) -> None:
        plain = [(k, v) for k, v in filter.items() if not isinstance(v, Mapping | list | tuple)]
        self.equal = tuple(plain)
        self.other = tuple((k, v) for k, v in filter.items() if (k, v) not in plain)

    def __call__(self, value: Mapping[str, Any]) -> bool:
        for key, expected in self.equal:
            if not value.get(key) == expected:  # noqa: SIM201 - == as the reference stores
                return False
        return all(_compare(value.get(k), v) for k, v in self.other)


def _compare(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in expected):
            return all(_apply(actual, op, operand) for op, operand in expected.items())
        if not isinstance(actual, Mapping):
            return False
        return all(_compare(actual.get(k), v) for k, v in expected.items())
    if isinstance(expected, list | tuple):
        return (
            isinstance(actual, list | tuple)
            and len(actual) == len(expected)
            and all(_compare(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


def _apply(actual: Any, op: str, operand: Any) -> bool:  # noqa: PLR0911 - one per operator
    if op == "$eq":
        return bool(actual == operand)
    if op == "$ne":
        return bool(actual != operand)
    if not _is_number(actual):
        return False  # a missing or non-numeric field never satisfies an ordering
    number, bound = float(actual), float(operand)
    if op == "$gt":
        return number > bound
    if op == "$gte":
        return number >= bound
    if op == "$lt":
        return number < bound
    return number <= bound


def namespace_matches(namespace: tuple[str, ...], match_type: str, path: tuple[str, ...]) -> bool:
    """LangGraph's ``MatchCondition`` semantics (``*`` matches any one label)."""
    if len(namespace) < len(path):
        return False
    if match_type == "prefix":
        pairs = zip(namespace, path, strict=False)
    elif match_type == "suffix":
        pairs = zip(reversed(namespace), reversed(path), strict=False)
    else:
        raise StoreInputError(f"unknown namespace match type {match_type!r}")
    return all(p in ("*", n) for n, p in pairs)
