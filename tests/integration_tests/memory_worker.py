"""A separate OS process that runs conversation turns against the Redis saver (used by the
memory integrity tests: two workers, skewed clocks, concurrent turns, many conversations).

    python -m tests.integration_tests.memory_worker URL PREFIX THREAD MESSAGE... [options]

Prints one JSON line per turn: ``{"message": ..., "ok": bool, "error": type or null,
"seen": number of messages the model saw}``. ``--skew`` shifts the clock LangGraph's uuid6
checkpoint ids come from (seconds); ``--model-seconds`` makes the model node slow;
``--multitask`` runs the turn through ``astream_chunks`` with that strategy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
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


async def run(args: argparse.Namespace) -> None:
    from streamagent.memory import AsyncRedisSaver

    if args.skew:
        skew_checkpoint_clock(args.skew)
    async with AsyncRedisSaver.from_url(
        args.url, key_prefix=args.prefix, ttl_seconds=args.ttl
    ) as saver:
        await saver.asetup()
        graph = chat_graph(saver, args.model_seconds)
        config = {"configurable": {"thread_id": args.thread}}
        for message in args.messages:
            out: dict[str, Any] = {"message": message, "ok": False, "error": None, "seen": 0}
            if args.multitask:
                from streamagent.streaming import astream_chunks

                async for chunk in astream_chunks(
                    graph,
                    [HumanMessage(message)],
                    thread_id=args.thread,
                    multitask=args.multitask,
                    wait_seconds=args.wait,
                ):
                    if chunk.type == "error" and chunk.error:
                        out["error"] = chunk.error["type"]
                    elif chunk.type == "done":
                        out["ok"] = True
            else:
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
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
