"""execute_bash in real bubblewrap (and unsandboxed): isolation, secrets, timeout, capping."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from langchain_core.messages import ToolMessage

from streamagent.tools import APPROVAL_METADATA_KEY, default_tools, sandbox_available
from streamagent.tools.sandbox import find_bwrap

SECRETS = {"OPENAI_API_KEY": "sk-test-SECRETSECRETSECRET", "REDIS_URL": "redis://:hunter2@h:6379"}


@pytest.fixture
def require_bwrap() -> None:
    if find_bwrap() is None or not sandbox_available():
        pytest.fail(
            "bubblewrap (bwrap) is missing or cannot create a sandbox: apt-get install "
            "bubblewrap, or deselect with -m 'not sandbox'"
        )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)


def bash(ws: Path, sandbox: str = "bwrap", **kw):
    return default_tools(ws, sandbox=sandbox, **kw)[2]


def run(tool, command: str, **args) -> dict:
    msg = tool.invoke(
        {
            "name": "execute_bash",
            "args": {"command": command, **args},
            "id": "1",
            "type": "tool_call",
        }
    )
    assert isinstance(msg, ToolMessage)
    return msg.artifact


pytestmark = pytest.mark.sandbox


def test_sandbox_runs_in_workspace_and_can_write_it(require_bwrap, ws):
    out = run(bash(ws), "pwd; echo made > f.txt; cat f.txt")
    assert out["exit_code"] == 0 and out["sandboxed"] is True
    assert out["output"] == f"{ws}\nmade\n"
    assert (ws / "f.txt").read_text() == "made\n"


def test_sandbox_cannot_see_files_outside_workspace(require_bwrap, ws, tmp_path):
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("TOP SECRET")
    out = run(
        bash(ws), f"cat {secret_dir}/secret.txt; ls /root /work /etc/shadow; echo x > /usr/pwned"
    )
    assert out["exit_code"] != 0
    assert "TOP SECRET" not in out["output"]
    assert "No such file" in out["output"]
    assert not Path("/usr/pwned").exists()


def test_sandbox_hides_agent_secrets_everywhere(require_bwrap, ws, secrets_env):
    out = run(
        bash(ws),
        "env; cat /proc/1/environ; echo; cat /proc/self/environ; "
        "tr '\\0' '\\n' < /proc/$PPID/environ",
    )
    text = out["output"]
    assert "PATH=" in text
    for key, value in SECRETS.items():
        assert key not in text and value not in text


def test_unsandboxed_command_env_is_scrubbed_too(ws, secrets_env):
    tool = bash(ws, sandbox="none")
    out = run(tool, "env; cat /proc/self/environ")
    assert out["sandboxed"] is False
    for key, value in SECRETS.items():
        assert key not in out["output"] and value not in out["output"]


def test_allow_listed_variable_passes(require_bwrap, ws, monkeypatch):
    monkeypatch.setenv("MY_SETTING", "visible")
    out = run(bash(ws, env_allowlist=("MY_SETTING",)), "echo $MY_SETTING")
    assert out["output"] == "visible\n"


def test_sandbox_has_no_network(require_bwrap, ws):
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.settimeout(0.5)
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    out = run(bash(ws), f"echo hi > /dev/tcp/127.0.0.1/{port} && echo CONNECTED")
    t.join()
    server.close()
    assert "CONNECTED" not in out["output"] and out["exit_code"] != 0
    assert accepted == []


def test_sandbox_drops_capabilities_and_has_own_pid_namespace(require_bwrap, ws):
    out = run(bash(ws), "grep CapEff /proc/self/status; ls /proc | grep -c '^[0-9]'")
    assert "CapEff:\t0000000000000000" in out["output"]
    assert int(out["output"].split()[-1]) < 10  # only the sandbox's own processes


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
def test_timeout_kills_background_grandchildren(request, ws, sandbox):
    if sandbox == "bwrap":
        request.getfixturevalue("require_bwrap")
    pidfile = ws / "pid"
    # The host-visible pid of the grandchild: the sleep writes its pid namespace-independent
    # marker into the workspace; we find it on the host by its unique argument.
    marker = f"1000.{os.getpid()}{len(sandbox)}"
    out = run(
        bash(ws, sandbox=sandbox),
        f"sleep {marker} & echo $! > {pidfile}; wait",
        timeout_seconds=0.5,
    )
    # (had the timeout not killed the group, `wait` would have waited 1000 s: a hang, ended by
    # pytest's timeout)
    assert out["timed_out"] is True and out["duration_seconds"] >= 0.5
    time.sleep(0.2)
    survivors = [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).endswith(marker)]
    assert survivors == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def test_background_child_does_not_outlive_command(ws):
    marker = f"999.{os.getpid()}7"
    out = run(bash(ws, sandbox="none"), f"sleep {marker} & echo started")
    assert out["exit_code"] == 0 and out["output"] == "started\n"
    time.sleep(0.2)
    assert [p for p in os.listdir("/proc") if p.isdigit() and _cmdline(p).endswith(marker)] == []


def test_output_is_capped_keeping_head_and_tail(ws):
    out = run(bash(ws, sandbox="none", max_output_bytes=1000), "seq 1 100000")
    text = out["output"]
    assert text.startswith("1\n2\n3\n") and text.endswith("99999\n100000\n")
    assert out["omitted_bytes"] > 500_000
    assert f"[... {out['omitted_bytes']} bytes of output omitted ...]" in text
    assert len(text) < 1200


def test_stdin_is_closed(require_bwrap, ws):
    # an open stdin would leave `cat` waiting until the timeout killed it: no "done", timed out
    out = run(bash(ws), "cat; echo done", timeout_seconds=60)
    assert out["output"] == "done\n" and out["timed_out"] is False and out["exit_code"] == 0


def test_result_content_has_status_line_and_stderr(require_bwrap, ws):
    tool = bash(ws)
    content = tool.invoke({"command": "echo out; echo err >&2; exit 3"})
    assert content.startswith("exit code: 3; duration: ")
    assert "out\n" in content and "err\n" in content


async def test_async_run_and_timeout(require_bwrap, ws):
    tool = bash(ws)
    msg = await tool.ainvoke(
        {
            "name": "execute_bash",
            "args": {"command": "echo started; sleep 600; echo finished", "timeout_seconds": 0.3},
            "id": "1",
            "type": "tool_call",
        }
    )
    out = msg.artifact
    assert out["timed_out"] is True and out["duration_seconds"] >= 0.3
    assert out["output"] == "started\n", "killed at the timeout, not waited for"
    assert "TIMED OUT" in msg.content


def test_timeout_is_clamped_to_configured_maximum(ws):
    # the model asks for 100 s; the tool allows 0.3 s: the command (2 s) does not get to finish
    tool = bash(ws, sandbox="none", bash_timeout_seconds=0.3)
    out = run(tool, "echo started; sleep 2; echo finished", timeout_seconds=100)
    assert out["timed_out"] is True and out["duration_seconds"] >= 0.3
    assert out["output"] == "started\n"


def test_auto_mode_uses_bwrap_when_available(require_bwrap, ws):
    tool = bash(ws, sandbox="auto")
    assert run(tool, "true")["sandboxed"] is True
    assert APPROVAL_METADATA_KEY not in (tool.metadata or {})


def test_auto_mode_without_bwrap_leaves_bash_out_and_bwrap_mode_refuses(ws, monkeypatch):
    # (the same on a real machine without bubblewrap: tests/integration_tests/test_hostile_cli.py)
    import streamagent.tools as tools_pkg

    monkeypatch.setattr(tools_pkg, "sandbox_available", lambda: False)
    from streamagent.errors import ConfigurationError

    names = [t.name for t in default_tools(ws, sandbox="auto")]
    assert names == ["read_file", "write_file", "git_operation"]
    with pytest.raises(ConfigurationError, match="bubblewrap"):
        default_tools(ws, sandbox="bwrap")
