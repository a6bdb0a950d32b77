"""Two real worker processes share one Redis: a thread moves between them losing nothing.

Each worker is a separate Python process running ``build_agent`` (with a ``lookup`` tool) on an
``AsyncRedisSaver`` with the same key prefix; both reach the same ``ScriptedOpenAIServer``
(real HTTP), whose responder answers from the request alone, so concurrent requests get
deterministic replies. The server's answer names how many messages it received, which proves
the history that the *other* worker wrote was loaded from Redis.
"""

from __future__ import annotations

import itertools
import json
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
from streamagent.testing.script import RecordedRequest
from tests.redis_fixtures import delete_prefix
from tests.redis_fixtures import test_redis_url as shared_redis_url

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60.0

# The worker: reads JSON requests on stdin (one per line), serves them concurrently, answers
# one JSON line per request on stdout. argv[1]: {"base_url", "redis_url", "prefix"}.
WORKER = r"""
import asyncio, json, sys
import redis.asyncio as aioredis
from langchain_core.tools import tool
from streamagent import AgentConfig, ModelConfig, astream_chunks, build_agent
from streamagent.memory import AsyncRedisSaver

@tool("lookup")
def lookup(text: str) -> str:
    "Look a word up."
    return f"looked up {text}"

def describe(m):
    return {"type": m.type, "id": m.id, "content": m.content,
            "tool_calls": [c["id"] for c in getattr(m, "tool_calls", None) or []],
            "tool_call_id": getattr(m, "tool_call_id", None)}

async def serve(agent, request):
    if request["op"] == "turn":
        content, results, errors = [], [], []
        async for chunk in astream_chunks(agent, request["text"], thread_id=request["thread"]):
            if chunk.type == "content":
                content.append(chunk.content)
            elif chunk.type == "tool_result":
                results.append(chunk.tool_result["content"])
            elif chunk.type == "error":
                errors.append(str(chunk.error))
        return {"content": "".join(content), "tool_results": results, "errors": errors}
    config = {"configurable": {"thread_id": request["thread"]}}
    state = await agent.aget_state(config)
    return {"messages": [describe(m) for m in state.values.get("messages", [])]}

async def main():
    options = json.loads(sys.argv[1])
    client = aioredis.Redis.from_url(options["redis_url"], socket_timeout=10)
    saver = AsyncRedisSaver(client, key_prefix=options["prefix"])
    await saver.asetup()
    cfg = AgentConfig(model=ModelConfig(base_url=options["base_url"], api_key="sk-test",
                                        timeout_seconds=20))
    agent = build_agent(tools=[lookup], config=cfg, checkpointer=saver)
    out = asyncio.Lock()
    loop = asyncio.get_running_loop()

    async def handle(line):
        request = json.loads(line)
        try:
            answer = await serve(agent, request)
        except Exception as exc:
            answer = {"exception": f"{type(exc).__name__}: {exc}"}
        async with out:
            sys.stdout.write(json.dumps({"id": request["id"], **answer}) + "\n")
            sys.stdout.flush()

    print("READY", flush=True)
    tasks = set()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        task = asyncio.create_task(handle(line))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    await client.aclose()

asyncio.run(main())
"""


class Worker:
    """One worker process and a thread reading its answers."""

    _ids = itertools.count(1)

    def __init__(self, name: str, options: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, json.dumps(options)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.answers: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.answers.put(line)

    def wait_ready(self) -> None:
        line = self.answers.get(timeout=TIMEOUT_SECONDS)
        assert line.strip() == "READY", f"worker {self.name} did not start: {line!r}"

    def send(self, op: str, thread: str, text: str = "") -> int:
        request_id = next(self._ids)
        assert self.proc.stdin is not None
        self.proc.stdin.write(
            json.dumps({"id": request_id, "op": op, "thread": thread, "text": text})
        )
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return request_id

    def receive(self, count: int) -> dict[int, dict[str, Any]]:
        answers = {}
        for _ in range(count):
            try:
                answer = json.loads(self.answers.get(timeout=TIMEOUT_SECONDS))
            except queue.Empty:
                pytest.fail(f"worker {self.name} did not answer within {TIMEOUT_SECONDS} s")
            assert "exception" not in answer, f"worker {self.name}: {answer['exception']}"
            answers[answer.pop("id")] = answer
        return answers

    def turn(self, thread: str, text: str) -> dict[str, Any]:
        request_id = self.send("turn", thread, text)
        return self.receive(1)[request_id]

    def messages(self, thread: str) -> list[dict[str, Any]]:
        request_id = self.send("state", thread)
        return self.receive(1)[request_id]["messages"]

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def respond(request: RecordedRequest) -> Reply:
    """User ``T:<thread>:<k>`` -> one lookup call; tool result -> an answer naming the count."""
    messages = [m for m in request.messages if m.get("role") != "system"]
    last = messages[-1]
    if last["role"] == "user":
        _, thread, k = last["content"].split(":")
        call = ToolCall("lookup", {"text": f"{thread}:{k}"}, id=f"call_{thread}_{k}")
        return Reply(tool_calls=[call])
    assert last["role"] == "tool", last
    key = last["content"].removeprefix("looked up ")
    return Reply(f"answer {key} after {len(messages)} messages")


def expected_messages(thread: str, turns: int) -> list[tuple[Any, ...]]:
    """(type, content, tool_calls, tool_call_id) of a thread after ``turns`` turns."""
    out: list[tuple[Any, ...]] = []
    for k in range(turns):
        key, call = f"{thread}:{k}", f"call_{thread}_{k}"
        out += [
            ("human", f"T:{key}", [], None),
            ("ai", "", [call], None),
            ("tool", f"looked up {key}", [], call),
            ("ai", f"answer {key} after {4 * k + 3} messages", [], None),
        ]
    return out


def summary(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(m["type"], m["content"], m["tool_calls"], m["tool_call_id"]) for m in messages]


@pytest.fixture(scope="module")
def server() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer(responder=respond) as scripted:
        yield scripted


@pytest.fixture(scope="module")
def workers(server: ScriptedOpenAIServer) -> Iterator[tuple[Worker, Worker]]:
    url = shared_redis_url()
    prefix = f"satest-scale-{uuid.uuid4().hex[:8]}"
    options = {"base_url": server.base_url, "redis_url": url, "prefix": prefix}
    pair = (Worker("A", options), Worker("B", options))
    try:
        for worker in pair:
            worker.wait_ready()
        yield pair
    finally:
        for worker in pair:
            worker.stop()
        client = redis.Redis.from_url(url)
        try:
            delete_prefix(client, prefix)
        finally:
            client.close()


def requests_of(server: ScriptedOpenAIServer, thread: str) -> list[RecordedRequest]:
    def mentions(request: RecordedRequest) -> bool:
        return any(f"T:{thread}:" in str(m.get("content")) for m in request.messages)

    return [r for r in server.requests if mentions(r)]


def test_a_thread_moves_from_worker_a_to_b_and_back_losing_and_duplicating_nothing(
    workers: tuple[Worker, Worker], server: ScriptedOpenAIServer
) -> None:
    a, b = workers
    thread = f"move{uuid.uuid4().hex[:6]}"
    for k, (runs, reads) in enumerate([(a, b), (b, a), (a, b)]):
        answer = runs.turn(thread, f"T:{thread}:{k}")
        assert answer["errors"] == []
        assert answer["tool_results"] == [f"looked up {thread}:{k}"]
        # 4k history messages from earlier turns (some written by the other worker) + 3 new
        assert answer["content"] == f"answer {thread}:{k} after {4 * k + 3} messages"
        messages = reads.messages(thread)  # read back on the *other* worker
        assert summary(messages) == expected_messages(thread, k + 1)
        ids = [m["id"] for m in messages]
        assert all(ids) and len(set(ids)) == len(ids)
        assert summary(runs.messages(thread)) == summary(messages)
    # each turn reached the model exactly twice (tool call, answer): nothing replayed
    assert len(requests_of(server, thread)) == 6


def test_interleaved_threads_on_both_workers_at_once(
    workers: tuple[Worker, Worker], server: ScriptedOpenAIServer
) -> None:
    a, b = workers
    tag = uuid.uuid4().hex[:6]
    threads = [f"mix{tag}x{i}" for i in range(6)]
    turns = 3
    for k in range(turns):
        sent: dict[Worker, dict[int, str]] = {a: {}, b: {}}
        for i, thread in enumerate(threads):  # thread i runs on A, B, A or B, A, B
            worker = (a, b)[(i + k) % 2]
            sent[worker][worker.send("turn", thread, f"T:{thread}:{k}")] = thread
        for worker, by_id in sent.items():
            for request_id, answer in worker.receive(len(by_id)).items():
                thread = by_id[request_id]
                assert answer["errors"] == [], (thread, answer)
                assert answer["content"] == f"answer {thread}:{k} after {4 * k + 3} messages"
    all_ids: list[str] = []
    for i, thread in enumerate(threads):
        for reader in (a, b):
            messages = reader.messages(thread)
            assert summary(messages) == expected_messages(thread, turns), (thread, reader.name)
        all_ids += [m["id"] for m in messages]
        assert len(requests_of(server, thread)) == 2 * turns
    assert len(set(all_ids)) == len(all_ids) == len(threads) * turns * 4
