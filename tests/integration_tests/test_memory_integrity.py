"""Memory integrity (issue #14): tampered data, clock skew, lost keys, expired threads,
connection limits, setup checks. Each fault is driven as a deployment would meet it, and each
test asserts that no acknowledged user message goes missing from the thread afterwards."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import ormsgpack
import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from streamagent.memory import RedisSaver, UnsafeDeserializationError
from tests.integration_tests.memory_worker import skew_checkpoint_clock
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


# --------------------------------------------------------------------------- helpers
ROOT = Path(__file__).resolve().parents[2]


def worker(url: str, prefix: str, thread: str, *messages: str, **options: Any) -> list[dict]:
    """Run turns in a separate OS process (tests/integration_tests/memory_worker.py)."""
    proc = worker_start(url, prefix, thread, *messages, **options)
    return worker_wait(proc)


def worker_start(
    url: str, prefix: str, thread: str, *messages: str, **options: Any
) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.integration_tests.memory_worker", url, prefix, thread]
    args += list(messages)
    for name, value in options.items():
        if value is not None:
            args += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def worker_wait(proc: subprocess.Popen[str], timeout: float = 60) -> list[dict]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def acknowledged(results: list[dict]) -> list[str]:
    return [r["message"] for r in results if r["ok"]]


# --------------------------------------------------------------------------- clock skew
def test_a_worker_with_a_clock_an_hour_ahead_hides_no_turn(
    redis_url: str, key_prefix: str, make_saver: Any
) -> None:
    """Issue row: worker A's clock 1 h ahead of worker B; every turn of both stays."""
    runs: list[dict] = []
    runs += worker(redis_url, key_prefix, "t", "a1", skew=3600)
    runs += worker(redis_url, key_prefix, "t", "b1", "b2")
    runs += worker(redis_url, key_prefix, "t", "a2", skew=3600)
    runs += worker(redis_url, key_prefix, "t", "b3", skew=-7200)
    assert all(r["ok"] for r in runs), runs
    # every turn saw the whole conversation before it (2 messages per earlier turn)
    assert [r["seen"] for r in runs] == [1, 3, 5, 7, 9]
    saver = make_saver("sync")
    graph = chat_graph(saver)
    assert user_texts(graph, "t") == acknowledged(runs) == ["a1", "b1", "b2", "a2", "b3"]
    # listing order stays LangGraph's: newest id first, whatever the write order
    ids = [
        t.config["configurable"]["checkpoint_id"]
        for t in saver.list({"configurable": {"thread_id": "t"}})
    ]
    assert ids == sorted(ids, reverse=True)
    head = saver.get_tuple({"configurable": {"thread_id": "t"}})
    assert head is not None and head.checkpoint["id"] != ids[0]  # "latest" is not the max id
    assert head.checkpoint["channel_values"]["messages"][-2].content == "b3"


def test_keep_last_keeps_the_head_whatever_the_clock(
    redis_url: str, key_prefix: str, make_saver: Any
) -> None:
    saver = make_saver("sync", keep_last=1)
    graph = chat_graph(saver)
    skew_checkpoint_clock(3600)
    try:
        graph.invoke({"messages": [HumanMessage("ahead")]}, {"configurable": {"thread_id": "k"}})
    finally:
        skew_checkpoint_clock(0)
    graph.invoke({"messages": [HumanMessage("now")]}, {"configurable": {"thread_id": "k"}})
    assert user_texts(graph, "k") == ["ahead", "now"]
    assert len(list(saver.list({"configurable": {"thread_id": "k"}}))) == 1
