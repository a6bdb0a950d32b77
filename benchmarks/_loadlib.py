"""Shared helpers of ``benchmarks/load.py`` and ``benchmarks/scaleout.py`` (not a library).

Scripted servers in child processes (their CPU is not the client's), Redis resolution and
clean-up, the benchmark's cheap tool, the agents under test (streamagent's ``build_agent``
and ``langgraph.prebuilt.create_react_agent`` on the same plain ChatOpenAI) and one turn of
each, reporting the wall time of every streamed content chunk.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AGENT_KINDS",
    "GcPauses",
    "TOOL_NAME",
    "ServerPool",
    "TurnResult",
    "agent_kinds_available",
    "delete_prefix",
    "make_runner",
    "make_saver",
    "markdown_table",
    "percentile",
    "raise_fd_limit",
    "redis_cluster",
    "redis_target",
    "rss_mb",
]

TOOL_NAME = "lookup"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: ``streamagent``: what build_agent uses by default; ``streamagent-plain``: build_agent on
#: ``create_chat_model(..., lean=False)`` (only when that flag exists); ``react``:
#: ``create_react_agent`` on the plain ChatOpenAI.
AGENT_KINDS = ("streamagent", "streamagent-plain", "react")

# A chunk callback gets ``time.perf_counter()`` of each content chunk as it reaches the caller.
OnContent = Callable[[float], None]
Runner = Callable[[str, str, OnContent], Awaitable["TurnResult"]]


@dataclass(slots=True)
class TurnResult:
    """What one agent turn produced (content chunks counted by the callback)."""

    chunks: int
    tool_results: int
    error: str | None = None


# ---------------------------------------------------------------------------------- process
def raise_fd_limit() -> int:
    """Raise RLIMIT_NOFILE to its hard limit (1,000 sessions need > 2,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_mb() -> float:
    """Current resident set size of this process in MB (``/proc/self/statm``)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """Peak resident set size of this process image in MB (``VmHWM``; unlike ``ru_maxrss``
    it is not inherited from the parent across fork + exec)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError("no VmHWM in /proc/self/status")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (0 when empty)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def markdown_table(headers: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one char per column (``l`` or ``r``)."""
    align = align or "l" + "r" * (len(headers) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


class GcPauses:
    """Wall time of the garbage collector's pauses while :attr:`active` (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.active = False
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.active:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    @property
    def max_ms(self) -> float:
        return max((p for _, p in self.pauses), default=0.0) * 1000

    def max_ms_of(self, generation: int) -> float:
        return max((p for g, p in self.pauses if g == generation), default=0.0) * 1000

    @property
    def total_ms(self) -> float:
        return sum(p for _, p in self.pauses) * 1000


# ---------------------------------------------------------------------------------- servers
class ServerPool:
    """``python -m streamagent.testing`` child processes answering every request with one
    ``lookup`` tool call, then (after the tool result) a text reply of ``reply_tokens`` chunks
    sent ``token_delay_ms`` apart on a fixed schedule (``--pace-on-schedule``: a chunk held back
    is followed by the next ones as soon as they are due, so a reply keeps its rate unless the
    client cannot keep up)."""

    def __init__(self, count: int, *, reply_tokens: int, token_delay_ms: float) -> None:
        self.count = count
        self.reply_tokens = reply_tokens
        self.token_delay_ms = token_delay_ms
        self.procs: list[subprocess.Popen[str]] = []
        self.urls: list[str] = []

    def __enter__(self) -> ServerPool:
        cmd = [
            sys.executable, "-m", "streamagent.testing", "--port", "0",
            "--reply-tokens", str(self.reply_tokens), "--tool-then-text",
            "--tool-name", TOOL_NAME, "--token-delay-ms", f"{self.token_delay_ms:.4f}",
            "--pace-on-schedule",
        ]  # fmt: skip
        try:
            for _ in range(self.count):
                # stderr: aiohttp reports every stream cut by SIGTERM at shutdown; failures
                # reach the client as errors, and a server that does not start is reported
                self.procs.append(
                    subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
                    )
                )
            for proc in self.procs:
                assert proc.stdout is not None
                line = proc.stdout.readline().strip()
                if not line.startswith("READY "):
                    raise RuntimeError(f"scripted server did not start: {line!r}")
                self.urls.append(line.split(" ", 1)[1])
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server processes used so far."""
        total = 0.0
        for proc in self.procs:
            with open(f"/proc/{proc.pid}/stat", encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------------------------- redis
@contextlib.contextmanager
def redis_target() -> Iterator[tuple[str, str]]:
    """``(url, description)``: REDIS_URL, else the local server on 6379, else an embedded one."""
    import redis

    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        client.ping()
        info = client.info("server")
        client.close()
        yield url, f"Redis {info.get('redis_version')} at {url}"
        return
    except redis.RedisError:
        if os.environ.get("REDIS_URL"):
            raise
    from streamagent.memory import EmbeddedRedis

    server = EmbeddedRedis(data_dir=Path(tempfile.mkdtemp(prefix="sa-bench-redis-")))
    try:
        yield server.start(), "embedded redis-server 6.2 (no server on 127.0.0.1:6379)"
    finally:
        server.stop()


def _cluster_port() -> int:
    from streamagent.memory.embedded import free_port

    for _ in range(1000):
        port = free_port()
        if port + 10000 <= 65535:  # the cluster bus listens on port + 10000
            return port
    raise RuntimeError("no free port below 55536 for a Redis Cluster node")


@contextlib.contextmanager
def redis_cluster(nodes: int = 3) -> Iterator[str]:
    """A throw-away Redis Cluster of ``nodes`` masters from the embedded redis-server binary
    (as ``tests/integration_tests/test_memory_cluster.py`` starts it); yields
    ``redis-cluster://127.0.0.1:PORT`` (see :func:`make_saver`)."""
    import redis

    from streamagent.memory.embedded import redis_server_path

    base = Path(tempfile.mkdtemp(prefix="sa-bench-cluster-"))
    ports = [_cluster_port() for _ in range(nodes)]
    procs = []
    for port in ports:
        directory = base / str(port)
        directory.mkdir()
        procs.append(subprocess.Popen(
            [str(redis_server_path()), "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
             "--dir", str(directory), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        ))  # fmt: skip
    try:
        clients = [redis.Redis(port=p, socket_timeout=2) for p in ports]
        _wait_until(lambda: all(c.ping() for c in clients))
        bounds = [i * 16384 // nodes for i in range(nodes + 1)]
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        _wait_until(lambda: all(c.cluster("info")["cluster_state"] == "ok" for c in clients))
        for client in clients:
            client.close()
        yield f"redis-cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


def _wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.ConnectionError, redis.ResponseError):
            if predicate():
                return
        time.sleep(0.05)
    raise RuntimeError("Redis Cluster did not become ready")


def new_prefix(tag: str) -> str:
    """A unique key prefix for one benchmark run."""
    return f"bench-{tag}-{uuid.uuid4().hex[:8]}"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key of ``prefix`` (all threads and the schema key); returns the count."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=30)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{{{prefix}:*", count=2000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
        deleted += int(client.delete(f"{prefix}:schema"))
    finally:
        client.close()
    return deleted


async def make_saver(url: str, prefix: str, *, max_connections: int = 64) -> Any:
    """A set-up ``AsyncRedisSaver`` on a bounded, blocking connection pool
    (``redis-cluster://HOST:PORT``: on an async ``RedisCluster`` client)."""
    import redis.asyncio as aioredis

    from streamagent.memory import AsyncRedisSaver

    if url.startswith("redis-cluster://"):
        from redis.asyncio.cluster import RedisCluster

        host, port = url.removeprefix("redis-cluster://").rsplit(":", 1)
        cluster = RedisCluster(
            host=host, port=int(port), socket_timeout=30, max_connections=max_connections
        )
        saver = AsyncRedisSaver(cluster, key_prefix=prefix)
        await saver.asetup()
        return saver
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, socket_timeout=30
    )
    saver = AsyncRedisSaver(aioredis.Redis(connection_pool=pool), key_prefix=prefix)
    await saver.asetup()
    return saver


# ---------------------------------------------------------------------------------- agents
def _lean_supported() -> bool:
    from streamagent.llm import create_chat_model

    return "lean" in inspect.signature(create_chat_model).parameters


def agent_kinds_available() -> list[str]:
    """The agent kinds this checkout can build (``streamagent-plain`` needs ``lean=``)."""
    return [k for k in AGENT_KINDS if k != "streamagent-plain" or _lean_supported()]


def _plain_chat_model(cfg: Any) -> Any:
    """ChatOpenAI on the SDK's path (``lean=False`` when ``create_chat_model`` has the flag)."""
    from streamagent.llm import create_chat_model

    if _lean_supported():
        return create_chat_model(cfg, lean=False)  # type: ignore[call-arg]
    return create_chat_model(cfg)


def _lookup_tool() -> Any:
    from langchain_core.tools import tool

    @tool(TOOL_NAME)
    def lookup(text: str) -> str:
        """Look a word up (returns it upper-cased)."""
        return text.upper()

    return lookup


def make_runner(kind: str, base_url: str, saver: Any) -> tuple[Runner, str]:
    """``(run_turn, model class name)`` for one agent kind on one server."""
    from streamagent import AgentConfig, ModelConfig, astream_chunks, build_agent

    cfg = ModelConfig(model="gpt-4o", base_url=base_url, api_key="sk-bench", timeout_seconds=120.0)
    tools = [_lookup_tool()]
    if kind == "react":
        from langchain_core.messages import AIMessageChunk
        from langgraph.prebuilt import create_react_agent

        llm = _plain_chat_model(cfg)
        react = create_react_agent(llm, tools=tools, checkpointer=saver)

        async def run_react(thread_id: str, text: str, on_content: OnContent) -> TurnResult:
            n = results = 0
            config = {"configurable": {"thread_id": thread_id}, "recursion_limit": 25}
            try:
                async for msg, _meta in react.astream(
                    {"messages": [("user", text)]}, config, stream_mode="messages"
                ):
                    if isinstance(msg, AIMessageChunk):
                        if msg.content:
                            on_content(time.perf_counter())
                            n += 1
                    elif msg.type == "tool":
                        results += 1
            except Exception as exc:
                return TurnResult(n, results, f"{type(exc).__name__}: {exc}")
            return TurnResult(n, results)

        return run_react, type(llm).__name__

    model = _plain_chat_model(cfg) if kind == "streamagent-plain" else None
    agent = build_agent(model=model, tools=tools, config=AgentConfig(model=cfg), checkpointer=saver)
    if model is None:
        from streamagent.llm import create_chat_model

        model_name = type(create_chat_model(cfg)).__name__
    else:
        model_name = type(model).__name__

    async def run_streamagent(thread_id: str, text: str, on_content: OnContent) -> TurnResult:
        n = results = 0
        async for chunk in astream_chunks(agent, text, thread_id=thread_id):
            if chunk.type == "content":
                on_content(time.perf_counter())
                n += 1
            elif chunk.type == "tool_result":
                results += 1
            elif chunk.type == "error":
                return TurnResult(n, results, str(chunk.error))
        return TurnResult(n, results)

    return run_streamagent, model_name
