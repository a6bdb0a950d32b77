"""The Redis savers behave exactly like LangGraph's InMemorySaver, method by method and on
real graphs (interrupts, errors, subgraphs), for RedisSaver and AsyncRedisSaver."""

from __future__ import annotations

import functools
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage, ToolMessage
from langgraph.checkpoint.base import (
    ERROR,
    INTERRUPT,
    RESUME,
    SCHEDULED,
    BaseCheckpointSaver,
    Checkpoint,
    empty_checkpoint,
)
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Interrupt, interrupt

from tests.redis_fixtures import *  # noqa: F403


def _checkpoint(values: dict[str, Any], versions: dict[str, Any], seen: Any = None) -> Checkpoint:
    ck = empty_checkpoint()
    ck["id"] = str(uuid6(clock_seq=-1))
    ck["channel_values"] = values
    ck["channel_versions"] = versions
    ck["versions_seen"] = seen or {"node": {k: v for k, v in versions.items()}}
    return ck


def _cfg(thread: str, ns: str = "", checkpoint_id: str | None = None, **extra: Any) -> Any:
    configurable: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns, **extra}
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


@functools.cache
def _script() -> list[tuple[str, Any]]:
    """A fixed sequence of saver calls (same checkpoint objects for every saver)."""
    h1 = HumanMessage("hello " * 50, id="h1")
    a1 = AIMessage("", id="a1", tool_calls=[{"id": "c1", "name": "t", "args": {"x": 1}}])
    t1 = ToolMessage("result", tool_call_id="c1", id="t1")
    a2 = AIMessage("done", id="a2")
    c1 = _checkpoint({"messages": [h1], "count": 1}, {"messages": "1", "count": "1"})
    c2 = _checkpoint(
        {"messages": [h1, a1], "count": 2, "flag": None},
        {"messages": "2", "count": "2", "flag": "1"},
    )
    c3 = _checkpoint(
        {"messages": [h1, a1, t1, a2], "count": 2, "flag": None},
        {"messages": "3", "count": "2", "flag": "1", "gone": "1"},
    )
    sub = _checkpoint({"messages": [h1, a2], "inner": "x"}, {"messages": "1", "inner": "1"})
    other = _checkpoint({"messages": [a2]}, {"messages": "1"})
    fork = _checkpoint({"messages": [h1, t1], "count": 9}, {"messages": "2", "count": "3"})
    ops: list[tuple[str, Any]] = [
        (
            "put",
            (
                _cfg("t1", user="ann", score=3),
                c1,
                {"source": "input", "step": -1},
                {"messages": "1", "count": "1"},
            ),
        ),
        (
            "put",
            (
                _cfg("t1", checkpoint_id=c1["id"]),
                c2,
                {"source": "loop", "step": 0},
                {"messages": "2", "count": "2", "flag": "1"},
            ),
        ),
        (
            "put_writes",
            (
                _cfg("t1", checkpoint_id=c2["id"]),
                [("messages", [t1]), ("count", 5)],
                "task-b",
                "~b",
            ),
        ),
        (
            "put_writes",
            (
                _cfg("t1", checkpoint_id=c2["id"]),
                [("messages", [a2]), ("count", 6)],
                "task-b",
                "~b",
            ),
        ),  # ignored
        ("put_writes", (_cfg("t1", checkpoint_id=c2["id"]), [(ERROR, "boom")], "task-a", "~a")),
        ("put_writes", (_cfg("t1", checkpoint_id=c2["id"]), [(ERROR, "boom2")], "task-a", "~a")),
        (
            "put_writes",
            (
                _cfg("t1", checkpoint_id=c2["id"]),
                [
                    (INTERRUPT, [Interrupt(value="ok?", id="i1")]),
                    (RESUME, ["yes"]),
                    (SCHEDULED, None),
                ],
                "task-c",
                "",
            ),
        ),
        (
            "put",
            (
                _cfg("t1", checkpoint_id=c2["id"]),
                c3,
                {"source": "loop", "step": 1, "k": [1]},
                {"messages": "3"},
            ),
        ),
        (
            "put",
            (
                _cfg("t1", ns="sub:1"),
                sub,
                {"source": "loop", "step": 0},
                {"messages": "1", "inner": "1"},
            ),
        ),
        ("put", (_cfg("t2"), other, {"source": "input", "step": -1}, {"messages": "1"})),
        (
            "put",
            (
                _cfg("t1", checkpoint_id=c1["id"]),
                fork,
                {"source": "fork", "step": 0},
                {"messages": "2.5", "count": "3"},
            ),
        ),
        (
            "put_writes",
            (
                _cfg("t1", checkpoint_id=fork["id"]),
                [("messages", [RemoveMessage(id="t1")])],
                "task-d",
                "",
            ),
        ),
    ]
    queries: list[tuple[str, Any]] = [
        ("get_tuple", _cfg("t1")),
        ("get_tuple", _cfg("t1", checkpoint_id=c2["id"])),
        ("get_tuple", _cfg("t1", checkpoint_id=c1["id"])),
        ("get_tuple", _cfg("t1", ns="sub:1")),
        ("get_tuple", {"configurable": {"thread_id": "t2"}}),
        ("get_tuple", _cfg("nope")),
        ("get_tuple", _cfg("t1", checkpoint_id="missing")),
        ("list", (_cfg("t1"), {})),
        ("list", ({"configurable": {"thread_id": "t1"}}, {})),
        ("list", (_cfg("t1"), {"filter": {"source": "loop"}})),
        ("list", (_cfg("t1"), {"filter": {"user": "ann", "score": 3}})),
        ("list", (_cfg("t1"), {"filter": {"k": [1]}})),
        ("list", (_cfg("t1"), {"before": _cfg("t1", checkpoint_id=c3["id"])})),
        ("list", ({"configurable": {"thread_id": "t1"}}, {"limit": 2})),
        ("list", (_cfg("t1"), {"limit": 0})),
        ("list", (_cfg("t1", checkpoint_id=c2["id"]), {})),
        ("list", (_cfg("nope"), {})),
        ("list_all", None),
        ("history", (_cfg("t1", checkpoint_id=c3["id"]), ["messages", "count", "gone"])),
        ("history", (_cfg("t1"), ["messages"])),
    ]
    return ops + queries + [("delete_thread", "t1"), ("get_tuple", _cfg("t1")),
                            ("list", ({"configurable": {"thread_id": "t1"}}, {})),
                            ("get_tuple", _cfg("t2"))]  # fmt: skip


def _run_sync(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    out: list[Any] = []
    for op, arg in _script():
        if op == "put":
            out.append(saver.put(*arg))
        elif op == "put_writes":
            out.append(saver.put_writes(*arg))
        elif op == "get_tuple":
            out.append(saver.get_tuple(arg))
        elif op == "list":
            out.append(list(saver.list(arg[0], **arg[1])))
        elif op == "list_all":
            items = [
                t for t in saver.list(None) if t.config["configurable"]["thread_id"] in ("t1", "t2")
            ]
            out.append(sorted(items, key=lambda t: str(t.config)))
        elif op == "history":
            out.append(saver.get_delta_channel_history(config=arg[0], channels=arg[1]))
        else:
            out.append(saver.delete_thread(arg))
    return out


async def _run_async(saver: BaseCheckpointSaver[Any]) -> list[Any]:
    out: list[Any] = []
    for op, arg in _script():
        if op == "put":
            out.append(await saver.aput(*arg))
        elif op == "put_writes":
            out.append(await saver.aput_writes(*arg))
        elif op == "get_tuple":
            out.append(await saver.aget_tuple(arg))
        elif op == "list":
            out.append([t async for t in saver.alist(arg[0], **arg[1])])
        elif op == "list_all":
            items = [
                t
                async for t in saver.alist(None)
                if t.config["configurable"]["thread_id"] in ("t1", "t2")
            ]
            out.append(sorted(items, key=lambda t: str(t.config)))
        elif op == "history":
            out.append(await saver.aget_delta_channel_history(config=arg[0], channels=arg[1]))
        else:
            out.append(await saver.adelete_thread(arg))
    return out


def _assert_same(expected: list[Any], actual: list[Any]) -> None:
    ops = _script()
    assert len(expected) == len(actual)
    for (op, _), want, got in zip(ops, expected, actual, strict=True):
        assert got == want, f"{op} differs"


def test_sync_saver_matches_in_memory_saver_call_by_call(make_saver: Any) -> None:
    expected = _run_sync(InMemorySaver())
    _assert_same(expected, _run_sync(make_saver("sync")))


async def test_sync_saver_async_methods_match_in_memory_saver(make_saver: Any) -> None:
    expected = await _run_async(InMemorySaver())
    _assert_same(expected, await _run_async(make_saver("sync")))


async def test_async_saver_matches_in_memory_saver_call_by_call(make_saver: Any) -> None:
    saver = make_saver("async")
    await saver.asetup()
    expected = await _run_async(InMemorySaver())
    _assert_same(expected, await _run_async(saver))


def test_next_version_follows_in_memory_scheme(make_saver: Any) -> None:
    mine, theirs = make_saver("sync"), InMemorySaver()
    for current in (None, 3, "00000000000000000000000000000007.123"):
        a, b = mine.get_next_version(current, None), theirs.get_next_version(current, None)
        assert a.split(".")[0] == b.split(".")[0] and len(a.split(".")[0]) == 32
    assert mine.get_next_version(None, None) != mine.get_next_version(None, None)


def test_extended_contract_goes_beyond_in_memory_saver(make_saver: Any) -> None:
    """delete_for_runs / copy_thread / prune: InMemorySaver lacks them, this saver has them
    (the conformance suite checks their behaviour)."""
    saver = make_saver("sync")
    for call in (
        lambda s: s.delete_for_runs(["r"]),
        lambda s: s.copy_thread("a", "b"),
        lambda s: s.prune(["a"]),
    ):
        with pytest.raises(NotImplementedError):
            call(InMemorySaver())
        call(saver)


# --------------------------------------------------------------------------- real graphs
class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    steps: Annotated[int, operator.add]


def _graph(saver: Any, fail: dict[str, bool]) -> Any:
    inner = StateGraph(State)
    inner.add_node("inner", lambda s: {"messages": [AIMessage("from subgraph")], "steps": 1})
    inner.add_edge(START, "inner")

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt({"question": "approve?"})
        return {"messages": [HumanMessage(f"answer: {answer}")], "steps": 1}

    def flaky(state: State) -> dict[str, Any]:
        if fail["on"]:
            raise ValueError("flaky failed")
        return {"messages": [AIMessage("all done")], "steps": 1}

    builder = StateGraph(State)
    builder.add_node("model", lambda s: {"messages": [AIMessage(f"turn {s['steps']}")], "steps": 1})
    builder.add_node("sub", inner.compile())
    builder.add_node("ask", ask)
    builder.add_node("flaky", flaky)
    builder.add_edge(START, "model")
    builder.add_edge("model", "sub")
    builder.add_edge("sub", "ask")
    builder.add_edge("ask", "flaky")
    builder.add_edge("flaky", END)
    return builder.compile(checkpointer=saver)


def _snapshot(state: Any) -> Any:
    return (
        [(m.type, m.content) for m in state.values.get("messages", [])],
        state.values.get("steps"),
        state.next,
        state.metadata.get("source"),
        state.metadata.get("step"),
        [(t.name, repr(t.error), [i.value for i in t.interrupts]) for t in state.tasks],
    )


def _drive(graph: Any, thread: str, fail: dict[str, bool]) -> list[Any]:
    config = {"configurable": {"thread_id": thread}}
    graph.invoke({"messages": [HumanMessage("hi")], "steps": 0}, config)
    with pytest.raises(ValueError, match="flaky failed"):
        graph.invoke(Command(resume="yes"), config)
    fail["on"] = False
    graph.invoke(None, config)
    graph.invoke({"messages": [HumanMessage("again")], "steps": 0}, config)
    history = [_snapshot(s) for s in graph.get_state_history(config)]
    sub = graph.get_state(config, subgraphs=True)
    return [history, _snapshot(sub), len(list(graph.get_state_history(config, limit=3)))]


async def _adrive(graph: Any, thread: str, fail: dict[str, bool]) -> list[Any]:
    config = {"configurable": {"thread_id": thread}}
    async for _ in graph.astream(
        {"messages": [HumanMessage("hi")], "steps": 0}, config, subgraphs=True
    ):
        pass
    with pytest.raises(ValueError, match="flaky failed"):
        await graph.ainvoke(Command(resume="yes"), config)
    fail["on"] = False
    await graph.ainvoke(None, config)
    await graph.ainvoke({"messages": [HumanMessage("again")], "steps": 0}, config)
    history = [_snapshot(s) async for s in graph.aget_state_history(config)]
    sub = await graph.aget_state(config, subgraphs=True)
    return [
        history,
        _snapshot(sub),
        len([s async for s in graph.aget_state_history(config, limit=3)]),
    ]


def test_graph_with_interrupt_error_and_subgraph_has_same_history_on_sync_saver(
    make_saver: Any,
) -> None:
    fail = {"on": True}
    expected = _drive(_graph(InMemorySaver(), fail), "g", fail)
    fail = {"on": True}
    actual = _drive(_graph(make_saver("sync"), fail), "g", fail)
    assert actual == expected
    assert len(expected[0]) > 8


async def test_graph_history_is_identical_through_astream_on_both_savers(make_saver: Any) -> None:
    fail = {"on": True}
    expected = await _adrive(_graph(InMemorySaver(), fail), "g", fail)
    saver = make_saver("async")
    await saver.asetup()
    for candidate in (make_saver("sync"), saver):
        fail = {"on": True}
        await candidate.adelete_thread("g")
        assert await _adrive(_graph(candidate, fail), "g", fail) == expected
