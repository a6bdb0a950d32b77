"""Agent level: the scripted model asks for refused actions; the agent reports them and carries on.

Real files, a real git repository, real bubblewrap (marker ``sandbox``) and real HTTP.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from streamagent import build_agent
from streamagent.testing import Reply, ToolCall
from streamagent.tools import default_tools
from tests._support.streams import collect, text, tool_results
from tests.conftest import config_for

pytestmark = pytest.mark.sandbox

SECRET = "sk-agent-secret-0123456789abcdef"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    (tmp_path / "outside.txt").write_text("host secret file\n")
    return ws


async def test_refused_actions_are_reported_to_the_model_and_the_agent_carries_on(
    make_server: Any, workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    outside = workspace.parent / "outside.txt"
    server = make_server(
        [
            Reply(
                tool_calls=[
                    ToolCall("read_file", {"path": "../outside.txt"}, id="r1"),
                    ToolCall(
                        "write_file",
                        {"path": ".git/hooks/pre-commit", "content": "#!/bin/sh\ntouch /tmp/pwn"},
                        id="w1",
                    ),
                    ToolCall("write_file", {"path": "../outside.txt", "content": "owned"}, id="w2"),
                    ToolCall("git_operation", {"operation": "log", "ref": "--output=x"}, id="g1"),
                    ToolCall(
                        "execute_bash",
                        {"command": "env; cat /proc/1/environ; ls /work /root 2>&1"},
                        id="b1",
                    ),
                ]
            ),
            "Some of those actions were refused.",
            Reply(tool_calls=[ToolCall("write_file", {"path": "notes.md", "content": "ok"})]),
            "Saved your notes.",
        ]
    )
    tools = default_tools(workspace, sandbox="bwrap")
    agent = build_agent(tools=tools, config=config_for(server), checkpointer=InMemorySaver())

    first = await collect(agent, "do risky things", thread_id="risky")
    results = tool_results(first)
    assert set(results) == {"r1", "w1", "w2", "g1", "b1"}
    for call_id in ("r1", "w1", "w2", "g1"):
        assert results[call_id]["status"] == "error", results[call_id]
    assert "workspace" in results["r1"]["content"]
    assert ".git" in results["w1"]["content"]
    print({k: v["content"] for k, v in results.items()})
    # the sandboxed command ran, but saw none of the agent's secrets or the host's files
    assert SECRET not in results["b1"]["content"]
    assert "OPENAI_API_KEY" not in results["b1"]["content"]
    assert "HOME=/home/sandbox" in results["b1"]["content"], "the command did run, sandboxed"
    assert "cannot access '/work'" in results["b1"]["content"]
    assert first[-1].type == "done"
    # nothing outside the workspace changed, no hook was planted
    assert outside.read_text() == "host secret file\n"
    assert not (workspace / ".git" / "hooks" / "pre-commit").exists()
    assert not (workspace / "x").exists()
    # the model saw one error ToolMessage per refused call, and answered
    tool_msgs = [m for m in server.requests[1].messages if m["role"] == "tool"]
    assert sorted(m["tool_call_id"] for m in tool_msgs) == ["b1", "g1", "r1", "w1", "w2"]
    assert text(first).startswith("Some of")

    # the agent carries on: the next turn's allowed action succeeds on the same thread
    second = await collect(agent, "save notes", thread_id="risky")
    assert second[-1].type == "done"
    assert [r["status"] for r in tool_results(second).values()] == ["success"]
    assert (workspace / "notes.md").read_text() == "ok"
