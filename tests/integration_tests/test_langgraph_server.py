"""``langgraph dev`` serves the repo's ``langgraph.json`` against the scripted model.

A real ``langgraph dev`` process (LangGraph API server, in-memory runtime) runs on loopback with
``OPENAI_BASE_URL`` pointing at a :class:`ScriptedOpenAIServer`; the tests talk to it over HTTP
with ``langgraph_sdk``. A second server uses ``redis_checkpointer`` from ``server.py`` as the
custom checkpointer (``"checkpointer": {"path": ...}`` in the config) on real Redis.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from langgraph_sdk import get_sync_client
from langgraph_sdk.client import SyncLangGraphClient

from streamagent.memory import RedisSaver
from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall
from tests import redis_fixtures

pytestmark = pytest.mark.langgraph_server

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPH_ID = "streamagent"
STARTUP_SECONDS = 60.0


@dataclass
class DevServer:
    """A running ``langgraph dev`` process and a client for it."""

    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    client: SyncLangGraphClient

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_env(model_url: str, workspace: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "LANGGRAPH_", "STREAMAGENT_"))
    }
    env.update(
        OPENAI_API_KEY="sk-test-not-a-real-key",
        OPENAI_BASE_URL=model_url,
        STREAMAGENT_WORKSPACE=str(workspace),
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGSMITH_TRACING="false",
        LANGCHAIN_TRACING_V2="false",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"langgraph dev exited with {process.returncode}:\n"
                + log_path.read_text(errors="replace")[-6000:]
            )
        try:
            if httpx.get(f"{url}/ok", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(
        f"langgraph dev did not answer /ok within {STARTUP_SECONDS:.0f} s:\n"
        + log_path.read_text(errors="replace")[-6000:]
    )


@contextmanager
def _dev_server(
    log_path: Path, model_url: str, workspace: Path, *, config: Path | None = None, **extra: str
) -> Iterator[DevServer]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "langgraph_cli",
        "dev",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]
    if config is not None:
        command += ["--config", str(config)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=_server_env(model_url, workspace, extra),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_ready(process, url, log_path)
        client = get_sync_client(url=url, api_key=None, timeout=30.0)
        yield DevServer(process=process, url=url, log_path=log_path, client=client)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedOpenAIServer]:
    with ScriptedOpenAIServer() as server:
        yield server


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lg-workspace")


@pytest.fixture(scope="module")
def dev_server(
    tmp_path_factory: pytest.TempPathFactory, model: ScriptedOpenAIServer, workspace: Path
) -> Iterator[DevServer]:
    log_path = tmp_path_factory.mktemp("lg-dev") / "langgraph-dev.log"
    with _dev_server(log_path, model.base_url, workspace) as server:
        yield server


def _run(
    server: DevServer, thread_id: str, text: str, **kwargs: Any
) -> tuple[list[str], list[str]]:
    """Stream one run; return (token texts of the model node, stream events seen)."""
    tokens: list[str] = []
    events: list[str] = []
    for part in server.client.runs.stream(
        thread_id,
        GRAPH_ID,
        input={"messages": [{"role": "user", "content": text}]},
        stream_mode="messages-tuple",
        **kwargs,
    ):
        events.append(part.event)
        if part.event == "error":
            pytest.fail(f"run failed: {part.data}\n{server.log()}")
        if part.event == "messages":
            chunk, metadata = part.data
            if metadata.get("langgraph_node") == "model" and chunk.get("content"):
                tokens.append(chunk["content"])
    return tokens, events


def _messages(server: DevServer, thread_id: str) -> list[dict[str, Any]]:
    state = server.client.threads.get_state(thread_id)
    return list(state["values"]["messages"])


def test_server_lists_the_streamagent_graph(dev_server: DevServer) -> None:
    assistants = dev_server.client.assistants.search(graph_id=GRAPH_ID)
    assert [a["graph_id"] for a in assistants] == [GRAPH_ID]
    graph = dev_server.client.assistants.get_graph(assistants[0]["assistant_id"])
    node_ids = {node["id"] for node in graph["nodes"]}
    assert {"prune", "model", "tools"} <= node_ids


def test_run_streams_scripted_tokens_in_order_and_state_holds_the_answer(
    dev_server: DevServer, model: ScriptedOpenAIServer
) -> None:
    answer = "Hello from the scripted model, token by token."
    model.enqueue(Reply(answer))
    seen = len(model.requests)
    thread = dev_server.client.threads.create()

    tokens, events = _run(dev_server, thread["thread_id"], "hi")

    assert events[0] == "metadata"
    assert len(tokens) > 3, "tokens must arrive one by one"
    assert "".join(tokens) == answer
    messages = _messages(dev_server, thread["thread_id"])
    assert [(m["type"], m["content"]) for m in messages] == [("human", "hi"), ("ai", answer)]
    assert messages[1]["name"] == GRAPH_ID
    request = model.requests[seen]
    assert request.body["model"] == "gpt-4o"
    assert request.stream
    assert request.messages == [{"role": "user", "content": "hi"}]


def test_run_configurable_overrides_model_and_temperature(
    dev_server: DevServer, model: ScriptedOpenAIServer
) -> None:
    model.enqueue(Reply("configured"))
    seen = len(model.requests)
    thread = dev_server.client.threads.create()

    tokens, _ = _run(
        dev_server,
        thread["thread_id"],
        "which model?",
        config={"configurable": {"model": "gpt-4o-mini", "temperature": 0.7}},
    )

    assert "".join(tokens) == "configured"
    body = model.requests[seen].body
    assert body["model"] == "gpt-4o-mini"
    assert body["temperature"] == 0.7


def test_second_run_on_a_thread_sends_the_history_kept_by_the_server(
    dev_server: DevServer, model: ScriptedOpenAIServer
) -> None:
    model.enqueue(Reply("first answer"), Reply("second answer"))
    seen = len(model.requests)
    thread_id = dev_server.client.threads.create()["thread_id"]

    _run(dev_server, thread_id, "first question")
    _run(dev_server, thread_id, "second question")

    assert model.requests[seen + 1].messages == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer", "name": GRAPH_ID},
        {"role": "user", "content": "second question"},
    ]
    messages = _messages(dev_server, thread_id)
    assert [m["content"] for m in messages] == [
        "first question",
        "first answer",
        "second question",
        "second answer",
    ]
    assert len({m["id"] for m in messages}) == 4


def test_tool_call_round_trip_writes_into_the_workspace(
    dev_server: DevServer, model: ScriptedOpenAIServer, workspace: Path
) -> None:
    call = ToolCall("write_file", {"path": "notes/server.txt", "content": "from the server"})
    model.enqueue(Reply(tool_calls=[call]), Reply("Saved it."))
    seen = len(model.requests)
    thread_id = dev_server.client.threads.create()["thread_id"]

    tokens, _ = _run(dev_server, thread_id, "save a note")

    assert (workspace / "notes" / "server.txt").read_text() == "from the server"
    assert "".join(tokens) == "Saved it."
    messages = _messages(dev_server, thread_id)
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[1]["tool_calls"][0]["name"] == "write_file"
    assert messages[2]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]
    assert messages[2]["status"] == "success"
    second = model.requests[seen + 1].messages
    assert second[-1]["role"] == "tool"
    assert second[-1]["tool_call_id"] == messages[1]["tool_calls"][0]["id"]


@pytest.fixture
def redis_dev_server(
    tmp_path: Path, model: ScriptedOpenAIServer, workspace: Path
) -> Iterator[tuple[DevServer, str, str]]:
    config = json.loads((REPO_ROOT / "langgraph.json").read_text())
    config["checkpointer"] = {"path": "./streamagent/graphs/server.py:redis_checkpointer"}
    config_path = tmp_path / "langgraph.redis.json"
    config_path.write_text(json.dumps(config))
    url = redis_fixtures.test_redis_url()
    prefix = f"satest-lg-{uuid.uuid4().hex[:10]}"
    try:
        with _dev_server(
            tmp_path / "langgraph-dev.log",
            model.base_url,
            workspace,
            config=config_path,
            REDIS_URL=url,
            STREAMAGENT_KEY_PREFIX=prefix,
        ) as server:
            yield server, url, prefix
    finally:
        client = redis.Redis.from_url(url)
        try:
            redis_fixtures.delete_prefix(client, prefix)
        finally:
            client.close()


def test_custom_checkpointer_path_keeps_server_threads_in_streamagent_redis(
    redis_dev_server: tuple[DevServer, str, str], model: ScriptedOpenAIServer
) -> None:
    server, url, prefix = redis_dev_server
    model.enqueue(Reply("stored in redis"))
    thread_id = server.client.threads.create()["thread_id"]

    tokens, _ = _run(server, thread_id, "remember me")

    assert "".join(tokens) == "stored in redis"
    log = server.log_path.read_text(errors="replace")
    assert "Using custom checkpointer" in log
    assert "AsyncRedisSaver" in log
    client = redis.Redis.from_url(url)
    try:
        saver = RedisSaver(client, key_prefix=prefix)
        stored = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    finally:
        client.close()
    assert stored is not None
    messages = stored.checkpoint["channel_values"]["messages"]
    assert [(m.type, m.content) for m in messages] == [
        ("human", "remember me"),
        ("ai", "stored in redis"),
    ]
