"""The embedded redis-server: persistence, default URL, and crash recovery (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import START, MessagesState, StateGraph

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory import EmbeddedRedis, RedisSaver, default_data_dir


def test_embedded_server_starts_and_persists_across_restarts(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "data")
    url = server.start()
    try:
        assert url.startswith("unix://") and redis.Redis.from_url(url).ping()
        assert server.start() == url  # idempotent
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        client.close()
        server.stop()
        client = redis.Redis.from_url(server.start())
        assert client.get("k") == b"v"
        client.close()
        assert oct((tmp_path / "data").stat().st_mode & 0o777) == "0o700"
    finally:
        server.stop()


def test_one_data_directory_serves_one_server(tmp_path: Path) -> None:
    with EmbeddedRedis(data_dir=tmp_path):
        with pytest.raises(ConfigurationError, match="in use"):
            EmbeddedRedis(data_dir=tmp_path).start()


def test_default_data_dir_follows_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STREAMAGENT_DATA_DIR", str(tmp_path / "x"))
    assert default_data_dir() == tmp_path / "x"
    monkeypatch.delenv("STREAMAGENT_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "streamagent"


_CHILD = """
import redis, sys
from streamagent.memory import default_redis_url
url = default_redis_url()
assert default_redis_url() == url
redis.Redis.from_url(url).set("from-child", "1")
print(url)
"""


@pytest.mark.slow
def test_default_url_starts_one_embedded_server_stopped_at_exit(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["STREAMAGENT_DATA_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert url.startswith("unix://") and str(tmp_path / "redis") in url
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    with EmbeddedRedis(data_dir=tmp_path / "redis") as server:  # data survived the program
        assert redis.Redis.from_url(server.url or "").get("from-child") == b"1"
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"
    out = subprocess.run(
        [sys.executable, "-c", "from streamagent.memory import default_redis_url as d; print(d())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "redis://127.0.0.1:1/0"


def _graph(saver: Any, hooks: dict[str, Any]) -> Any:
    def model(state: MessagesState) -> dict[str, Any]:
        hooks.get("during_model", lambda: None)()
        return {"messages": [AIMessage(f"answer {len(state['messages'])}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", model)
    builder.add_edge(START, "model")
    return builder.compile(checkpointer=saver)


def _kill(server: EmbeddedRedis) -> None:
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()


@pytest.mark.slow
def test_kill_9_between_and_during_turns_keeps_every_completed_turn(tmp_path: Path) -> None:
    server = EmbeddedRedis(data_dir=tmp_path / "crash")
    url = server.start()
    hooks: dict[str, Any] = {}
    config = {"configurable": {"thread_id": "t"}}
    try:
        with RedisSaver.from_url(url, key_prefix="crash") as saver:
            saver.setup()
            graph = _graph(saver, hooks)
            for i in range(3):
                graph.invoke({"messages": [HumanMessage(f"q{i}")]}, config)
            _kill(server)  # between turns
            server.start()
            assert len(graph.get_state(config).values["messages"]) == 6
            hooks["during_model"] = lambda: _kill(server)  # in the middle of a turn
            with pytest.raises(MemoryUnavailable):
                graph.invoke({"messages": [HumanMessage("q3")]}, config)
            hooks.clear()
            server.start()
            state = graph.get_state(config)
            assert [m.content for m in state.values["messages"]][:6] == [
                "q0",
                "answer 1",
                "q1",
                "answer 3",
                "q2",
                "answer 5",
            ]
            if state.next:  # the interrupted turn's input was saved: re-run it
                graph.invoke(None, config)
            else:  # nothing of it was saved: send it again
                graph.invoke({"messages": [HumanMessage("q3")]}, config)
            contents = [m.content for m in graph.get_state(config).values["messages"]]
            assert contents == [
                "q0",
                "answer 1",
                "q1",
                "answer 3",
                "q2",
                "answer 5",
                "q3",
                "answer 7",
            ]
            assert all(t.checkpoint for t in saver.list(config))  # every checkpoint readable
    finally:
        server.stop()
