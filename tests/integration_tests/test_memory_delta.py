"""LangGraph's DeltaChannel on the Redis saver: the native get_delta_channel_history (one
script) returns what the base class's walk returns; snapshots of messages are stored as refs."""

from __future__ import annotations

from typing import Annotated, Any, TypedDict

import pytest
import redis
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from tests.redis_fixtures import *  # noqa: F403


def reduce_messages(state: list[Any] | None, writes: list[Any]) -> list[Any]:
    out: list[Any] = list(state or [])
    for write in writes:
        out = add_messages(out, write)
    return out


class State(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(reduce_messages, snapshot_frequency=3)]
    note: str


def graph_for(saver: Any) -> Any:
    def model(state: State) -> dict[str, Any]:
        return {"messages": [AIMessage(f"reply {len(state['messages'])}")], "note": "n"}

    builder = StateGraph(State)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_delta_channel_threads_replay_exactly(
    make_saver: Any, sync_client: redis.Redis, kind: str
) -> None:
    saver = make_saver(kind)
    if kind == "async":
        await saver.asetup()
    graph = graph_for(saver)
    config = {"configurable": {"thread_id": "d"}}
    for i in range(7):
        await graph.ainvoke({"messages": [HumanMessage(f"q{i}", id=f"h{i}")]}, config)
    state = await graph.aget_state(config)
    assert [m.content for m in state.values["messages"]][::2] == [f"q{i}" for i in range(7)]
    assert len(state.values["messages"]) == 14
    # the native history equals the base class's walk, at every checkpoint of the thread
    for item in [c async for c in saver.alist(config)]:
        target = item.config
        native = await saver.aget_delta_channel_history(config=target, channels=["messages"])
        walked = await BaseCheckpointSaver.aget_delta_channel_history(
            saver, config=target, channels=["messages"]
        )
        assert native == walked
    # snapshots of messages reference the stored messages instead of copying them
    stored = sync_client.hgetall(saver.keys_for("d").blobs)
    blobs = [v for f, v in stored.items() if b"\x00messages\x00" in f]
    assert any(v.startswith(b"S\x00") for v in blobs)
    assert not any(b"q0" in v for v in blobs)
    # time travel to an older checkpoint replays from there
    history = [s async for s in graph.aget_state_history(config)]
    old = history[len(history) // 2]
    replayed = await graph.aget_state(old.config)
    assert replayed.values["messages"] == old.values["messages"]
