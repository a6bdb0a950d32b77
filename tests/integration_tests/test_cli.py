"""The ``streamagent`` CLI as a user runs it: a real process, real HTTP, real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streamagent.testing import Reply, ToolCall
from tests.redis_fixtures import private_redis  # noqa: F401, F811 - fixture

CLI = [sys.executable, "-m", "streamagent.cli"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # no REDIS_URL: the CLI must start its own embedded Redis (data under STREAMAGENT_DATA_DIR)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "LANGSMITH_", "LANGCHAIN_")) and k != "REDIS_URL"
    }
    env["STREAMAGENT_DATA_DIR"] = str(tmp_path / "data")
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


@pytest.mark.slow
def test_demo_json_streams_tokens_tool_call_memory_and_cost(tmp_path):
    out = subprocess.run(
        [*CLI, "demo", "--json", "--token-delay-ms", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
    kinds = [line["type"] for line in lines]
    assert kinds.count("done") == 2
    assert "tool_call" in kinds and "tool_result" in kinds and kinds.count("content") > 10
    summary = lines[-1]
    assert summary["type"] == "summary"
    assert summary["remembered_turn1"] is True and summary["file_written"] is True
    assert summary["turn2_messages_sent"] >= 5
    assert summary["total_cost_usd"] is not None and float(summary["total_cost_usd"]) > 0
    assert "\x1b[" not in out.stdout, "--json output has no colour codes"


@pytest.mark.slow
def test_demo_human_output_exits_zero(tmp_path):
    out = subprocess.run(
        [*CLI, "demo", "--token-delay-ms", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(tmp_path),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "tool call" in out.stdout and "write_file" in out.stdout
    assert "turn 1 remembered: True" in out.stdout


@pytest.mark.slow
def test_run_json_against_scripted_server_with_thread_continuation(make_server, tmp_path):
    server = make_server(
        [
            Reply(tool_calls=[ToolCall("write_file", {"path": "a.txt", "content": "hi"})]),
            "wrote it",
            "still here",
        ]
    )
    env = clean_env(tmp_path)
    base = [
        *CLI,
        "run",
        "--base-url",
        server.base_url,
        "--workspace",
        str(tmp_path),
        "--json",
        "--thread",
        "cli-t",
    ]
    first = subprocess.run(
        [*base, "write a.txt"], capture_output=True, text=True, timeout=120, env=env
    )
    assert first.returncode == 0, first.stderr[-2000:]
    chunks = [json.loads(x) for x in first.stdout.splitlines()]
    assert chunks[-1]["type"] == "done"
    assert (tmp_path / "a.txt").read_text() == "hi"
    second = subprocess.run(
        [*base, "and now?"], capture_output=True, text=True, timeout=120, env=env
    )
    assert second.returncode == 0, second.stderr[-2000:]
    assert len(server.requests[2].messages) == 5, "the thread continued from Redis"


def test_missing_key_and_base_url_is_one_line_not_a_traceback(tmp_path):
    out = subprocess.run(
        [*CLI, "run", "hello"], capture_output=True, text=True, timeout=60, env=clean_env(tmp_path)
    )
    assert out.returncode == 2
    assert "OPENAI_API_KEY" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_chat_keeps_the_conversation_across_lines_and_threads(make_server, tmp_path):
    server = make_server(["first answer", "second answer", "resumed answer"])
    env = clean_env(tmp_path)
    base = [*CLI, "chat", "--base-url", server.base_url, "--workspace", str(tmp_path)]
    out = subprocess.run(
        [*base, "--thread", "chat-t", "--json"],
        input="hello\nand again\n\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    chunks = [json.loads(x) for x in out.stdout.splitlines()]
    assert [c["type"] for c in chunks].count("done") == 2
    text = "".join(c.get("content") or "" for c in chunks if c["type"] == "content")
    assert text == "first answersecond answer"
    assert [m["role"] for m in server.requests[1].messages] == ["user", "assistant", "user"]
    # a new process continues the same thread from the embedded Redis' persisted data
    again = subprocess.run(
        [*base, "--thread", "chat-t", "--json"],
        input="still there?\n",
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(server.requests[2].messages) == 5


@pytest.mark.slow
def test_run_on_a_busy_thread_rejects_by_default_and_enqueue_waits(
    make_server,
    tmp_path,
    private_redis,  # noqa: F811
):
    """Two CLI processes on one thread: the second is refused (ThreadBusyError, exit 1,
    nothing stored) while the first runs; --multitask enqueue waits for it instead."""
    import time

    # the first turn streams for ~20 s: long enough for a second CLI process to start and be
    # refused on a loaded machine (its start-up alone takes seconds), short for the enqueue
    slow = " ".join(["word"] * 40)
    server = make_server([Reply(slow, token_delay_seconds=0.5), "second answer"])
    # the default key prefix, on a server of its own
    env = clean_env(tmp_path, REDIS_URL=private_redis.url)
    base = [*CLI, "run", "--base-url", server.base_url, "--workspace", str(tmp_path), "--json"]
    thread = f"busy-{os.getpid()}-{time.monotonic_ns()}"
    first = subprocess.Popen(
        [*base, "--thread", thread, "first"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not server.requests:
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.05)
    busy = subprocess.run(
        [*base, "--thread", thread, "rejected"], capture_output=True, text=True, timeout=60,
        env=env,
    )  # fmt: skip
    assert busy.returncode == 1
    error = [json.loads(x) for x in busy.stdout.splitlines()][-1]
    assert error["type"] == "error" and error["error"]["type"] == "ThreadBusyError"
    assert error["error"]["retryable"] is True
    queued = subprocess.run(
        [*base, "--thread", thread, "--multitask", "enqueue", "queued"],
        capture_output=True, text=True, timeout=90, env=env,
    )  # fmt: skip
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err[-2000:]
    assert queued.returncode == 0, queued.stderr[-2000:]
    assert len(server.requests) == 2
    sent = [m["content"] for m in server.requests[1].messages if m["role"] == "user"]
    assert sent == ["first", "queued"]  # the rejected turn left nothing in the thread
