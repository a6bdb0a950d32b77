"""StrictSerializer refusals: every kind of untrusted payload raises UnsafeDeserializationError,
nothing loads as a raw dict or runs code."""

from __future__ import annotations

import datetime
import json
import pickle
import uuid
from decimal import Decimal
from typing import Any

import ormsgpack
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.types import Command, Interrupt, Send

from streamagent.memory import StrictSerializer, UnsafeDeserializationError


def _ext(code: int, *parts: Any) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, ormsgpack.packb(list(parts)))


class Boom:
    def __reduce__(self) -> Any:
        return (pytest.fail, ("pickle payload was executed",))


TAMPERED: dict[str, tuple[str, bytes]] = {
    "pickle": ("pickle", pickle.dumps(Boom())),
    "lc1 constructor (json)": (
        "json",
        json.dumps({"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}).encode(),
    ),
    "lc2 constructor (json)": (
        "json",
        json.dumps({"lc": 2, "type": "constructor", "id": ["x", "Y"], "kwargs": {"a": 1}}).encode(),
    ),
    "lc2 constructor of a safe type (json)": (
        "json",
        json.dumps({"lc": 2, "type": "constructor", "id": ["decimal", "Decimal"]}).encode(),
    ),
    "lc2 envelope nested in msgpack": (
        "msgpack",
        ormsgpack.packb({"v": [1, {"lc": 2, "type": "constructor", "id": ["x", "Y"]}]}),
    ),
    "lc1 secret envelope in msgpack": (
        "msgpack",
        ormsgpack.packb({"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]}),
    ),
    "unknown msgpack extension": ("msgpack", ormsgpack.packb({"x": ormsgpack.Ext(99, b"")})),
    "unknown extension inside an allowed one": (
        "msgpack",
        ormsgpack.packb(_ext(0, "decimal", "Decimal", ormsgpack.Ext(42, b""))),
    ),
    "type outside the allowlist": ("msgpack", ormsgpack.packb(_ext(1, "os", "system", ["id"]))),
    "method outside the safe list": (
        "msgpack",
        ormsgpack.packb(_ext(3, "os", "popen", "id", "read")),
    ),
    "allowed type that cannot be rebuilt": (
        "msgpack",
        ormsgpack.packb(_ext(0, "decimal", "Decimal", [1, 2])),
    ),
    "malformed msgpack": ("msgpack", b"\xc1"),
    "unknown value type": ("marshal", b"\x00"),
}


@pytest.mark.parametrize("name", list(TAMPERED))
def test_tampered_payloads_are_refused_with_a_typed_error(name: str) -> None:
    with pytest.raises(UnsafeDeserializationError):
        StrictSerializer().loads_typed(TAMPERED[name])


def test_refusals_are_typed_and_name_what_was_refused() -> None:
    serde = StrictSerializer()
    with pytest.raises(UnsafeDeserializationError, match=r"lc:2 'constructor' envelope of x\.Y"):
        serde.loads_typed(TAMPERED["lc2 constructor (json)"])
    with pytest.raises(UnsafeDeserializationError, match="pickle"):
        serde.loads_typed(TAMPERED["pickle"])
    with pytest.raises(UnsafeDeserializationError, match="unknown msgpack extension 99"):
        serde.loads_typed(TAMPERED["unknown msgpack extension"])
    with pytest.raises(UnsafeDeserializationError, match=r"os\.system"):
        serde.loads_typed(TAMPERED["type outside the allowlist"])


def test_the_types_langgraph_stores_still_round_trip() -> None:
    serde = StrictSerializer()
    values: list[Any] = [
        {"messages": [HumanMessage("hi", id="1"), AIMessage("lc calc", id="2")]},
        Send("node", {"x": 1}),
        Command(goto="x", update={"a": 1}),
        Interrupt(value={"q": 1}, id="i"),
        datetime.datetime.now(datetime.UTC),
        uuid.uuid4(),
        Decimal("1.25"),
        {1, 2},
        {"lc": "a key named lc without an envelope type"},
        b"raw",
        None,
    ]
    for value in values:
        assert serde.loads_typed(serde.dumps_typed(value)) == value
    snap = serde.loads_typed(serde.dumps_typed(_DeltaSnapshot([1, 2])))
    assert isinstance(snap, _DeltaSnapshot)
    assert snap.value == [1, 2]
    assert serde.loads_typed(("json", b'{"plain": [1, 2]}')) == {"plain": [1, 2]}


def test_allowlist_clone_keeps_refusing() -> None:
    serde = StrictSerializer().with_msgpack_allowlist([("os", "getcwd")])
    assert isinstance(serde, StrictSerializer)
    with pytest.raises(UnsafeDeserializationError):
        serde.loads_typed(TAMPERED["type outside the allowlist"])
    with pytest.raises(UnsafeDeserializationError):
        serde.loads_typed(TAMPERED["lc2 envelope nested in msgpack"])
