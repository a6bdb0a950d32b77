"""Memory integrity (issue #14): tampered data, clock skew, lost keys, expired threads,
connection limits, setup checks. Each fault is driven as a deployment would meet it, and each
test asserts that no acknowledged user message goes missing from the thread afterwards."""

from __future__ import annotations

import json
import pickle
from typing import Any, TypedDict

import ormsgpack
import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from streamagent.memory import RedisSaver, UnsafeDeserializationError
from tests.redis_fixtures import *  # noqa: F403


class NoteState(TypedDict):
    note: str


def chat_graph(saver: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node(
        "model", lambda s: {"messages": [AIMessage(f"reply to {s['messages'][-1].content}")]}
    )
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def user_texts(graph: Any, thread: str) -> list[str]:
    state = graph.get_state({"configurable": {"thread_id": thread}})
    return [m.content for m in state.values.get("messages", []) if isinstance(m, HumanMessage)]


TAMPERED_BLOBS = {
    "pickle": b"pickle\x00" + pickle.dumps({"x": 1}),
    "lc1": b"json\x00"
    + json.dumps({"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {}}).encode(),
    "lc2": b"json\x00"
    + json.dumps({"lc": 2, "type": "constructor", "id": ["x", "Y"], "kwargs": {}}).encode(),
    "lc2-msgpack": b"msgpack\x00"
    + ormsgpack.packb({"lc": 2, "type": "constructor", "id": ["x", "Y"]}),
    "unknown-ext": b"msgpack\x00" + ormsgpack.packb(ormsgpack.Ext(77, b"")),
}


@pytest.mark.parametrize("kind", list(TAMPERED_BLOBS))
def test_tampered_checkpoint_values_are_refused_with_a_typed_error(
    make_saver: Any, sync_client: redis.Redis, kind: str
) -> None:
    saver: RedisSaver = make_saver("sync")
    builder = StateGraph(NoteState)
    builder.add_node("n", lambda s: {"note": "stored"})
    builder.add_edge(START, "n")
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"note": "first"}, {"configurable": {"thread_id": "t"}})
    blobs = saver.keys_for("t")[3]
    fields = [f for f in sync_client.hkeys(blobs) if f.split(b"\x00")[1] == b"note"]
    assert fields
    for field in fields:
        sync_client.hset(blobs, field, TAMPERED_BLOBS[kind])
    with pytest.raises(UnsafeDeserializationError):
        saver.get_tuple({"configurable": {"thread_id": "t"}})
    with pytest.raises(UnsafeDeserializationError):
        graph.invoke({"note": "second"}, {"configurable": {"thread_id": "t"}})
