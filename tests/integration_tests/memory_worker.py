"""A separate OS process that runs conversation turns against the Redis saver (used by the
memory integrity tests: two workers, skewed clocks, concurrent turns, many conversations).

    python -m tests.integration_tests.memory_worker URL PREFIX THREAD MESSAGE... [options]

Prints one JSON line per turn: ``{"message": ..., "ok": bool, "error": type or null,
"seen": number of messages the model saw}``. ``--skew`` shifts the clock LangGraph's uuid6
checkpoint ids come from (seconds); ``--model-seconds`` makes the model node slow;
``--multitask`` runs the turn through ``astream_chunks`` with that strategy; ``--concurrent``
runs the turns of every thread at once; ``--read`` prints each thread's user messages;
``--gate PATH`` waits for PATH to appear before each message after the first;
``--turn-gate PATH`` creates PATH.ready, then waits for PATH, before every message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph


def skew_checkpoint_clock(seconds: float) -> None:
    """Make LangGraph's checkpoint ids come from a clock ``seconds`` ahead (or behind)."""
    import langgraph.checkpoint.base.id as ids

    class _Clock:
        @staticmethod
        def time_ns() -> int:
            return time.time_ns() + int(seconds * 1e9)

    ids.time = _Clock  # type: ignore[assignment]


def chat_graph(saver: Any, model_seconds: float = 0.0) -> Any:
    async def model(state: MessagesState) -> dict[str, Any]:
        if model_seconds:
            await asyncio.sleep(model_seconds)
        last = state["messages"][-1].content
        return {"messages": [AIMessage(f"reply to {last} after {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


async def read(graph: Any, threads: list[str]) -> None:
    """``--read``: print each thread's user messages (or the error reading it raised)."""
    for thread in threads:
        out: dict[str, Any] = {"thread": thread, "users": None, "error": None}
        try:
            state = await graph.aget_state({"configurable": {"thread_id": thread}})
            messages = state.values.get("messages", [])
            out["users"] = [m.content for m in messages if isinstance(m, HumanMessage)]
        except Exception as exc:
            out["error"] = type(exc).__name__
        print(json.dumps(out), flush=True)


async def wait_gate(path: str) -> None:
    gate = Path(path)
    while not gate.exists():
        await asyncio.sleep(0.02)
    gate.unlink()


async def run(args: argparse.Namespace) -> None:
    from streamagent.memory import AsyncRedisSaver

    if args.skew:
        skew_checkpoint_clock(args.skew)
    threads = args.thread.split(",")
    pool = {"max_connections": args.max_connections} if args.max_connections else {}
    async with AsyncRedisSaver.from_url(
        args.url, key_prefix=args.prefix, ttl_seconds=args.ttl, **pool
    ) as saver:
        await saver.asetup(eviction="ignore")
        graph = chat_graph(saver, args.model_seconds)
        if args.read:
            await read(graph, threads)
            return
        for number, message in enumerate(args.messages):
            if args.turn_gate:
                Path(f"{args.turn_gate}.ready").touch()  # the test may open the gate
                await wait_gate(args.turn_gate)
            if number and args.gate:
                await wait_gate(args.gate)
            if args.concurrent:
                await asyncio.gather(*(turn(graph, args, t, message) for t in threads))
                continue
            for thread in threads:
                await turn(graph, args, thread, message)


async def turn(graph: Any, args: argparse.Namespace, thread: str, message: str) -> None:
    out: dict[str, Any] = {
        "thread": thread,
        "message": message,
        "ok": False,
        "error": None,
        "seen": 0,
    }
    if args.multitask:
        from streamagent.streaming import astream_chunks

        async for chunk in astream_chunks(
            graph,
            [HumanMessage(message)],
            thread_id=thread,
            multitask=args.multitask,
            wait_seconds=args.wait,
        ):
            if chunk.type == "error" and chunk.error:
                out["error"] = chunk.error["type"]
            elif chunk.type == "done":
                out["ok"] = True
    else:
        config = {"configurable": {"thread_id": thread}}
        try:
            result = await graph.ainvoke({"messages": [HumanMessage(message)]}, config)
            out["ok"] = True
            out["seen"] = len(result["messages"]) - 1
        except Exception as exc:
            out["error"] = type(exc).__name__
    print(json.dumps(out), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("thread")
    parser.add_argument("messages", nargs="+")
    parser.add_argument("--skew", type=float, default=0.0)
    parser.add_argument("--ttl", type=int, default=None)
    parser.add_argument("--model-seconds", type=float, default=0.0)
    parser.add_argument("--multitask", default=None)
    parser.add_argument("--wait", type=float, default=None)
    parser.add_argument("--gate", default=None)
    parser.add_argument("--read", action="store_true")
    parser.add_argument("--turn-gate", default=None)
    parser.add_argument("--concurrent", action="store_true")
    parser.add_argument("--max-connections", type=int, default=None)
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
