"""Issue #19, the terminal and the shell: a hostile model, tool or server against the real CLI
(pipe and pty), Ctrl-C in a real terminal, and what an unsandboxed command can see."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from streamagent.testing import Fault, Reply, ToolCall
from tests.integration_tests.test_cli import CLI, clean_env

# what a hostile reply carries: OSC 52 (clipboard write), OSC 8 (a lying link), SGR 8 (hidden
# text), clear screen, a C1 CSI, a carriage return that overwrites the line, a bidi override
HOSTILE = (
    "A\x1b]52;c;ZXZpbA==\x07B\x1b]8;;http://evil.example\x1b\\link\x1b]8;;\x1b\\"
    "C\x1b[8mhidden\x1b[0m\x1b[2JD\x9b31mE\rF\u202eG"
)
HOSTILE_TOOL = "evil\x1b[2J\x1b]52;c;eA==\x07tool"
FORBIDDEN = ("\x1b]", "\x1b[2J", "\x1b[8m", "\x9b", "\x07", "\r", "\u202e")


def _script() -> list[Any]:
    return [Reply(tool_calls=[ToolCall(HOSTILE_TOOL, {"x": HOSTILE})]), Reply(HOSTILE)]


def _run(server: Any, tmp_path: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "run", "--base-url", server.base_url, "--workspace", str(tmp_path), *extra, "go"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(tmp_path, **env),
        check=False,
    )


@pytest.mark.slow
def test_hostile_model_text_and_tool_names_are_shown_not_obeyed_in_a_pipe(make_server, tmp_path):
    out = _run(make_server(_script()), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "\x1b" not in out.stdout and "\x1b" not in out.stderr
    for seq in FORBIDDEN:
        assert seq not in out.stdout, repr(seq)
    assert "\\x1b]52;c;ZXZpbA==\\x07" in out.stdout, "the sequence is shown, escaped"
    assert "\\u202e" in out.stdout and "evil\\x1b[2J" in out.stdout


@pytest.mark.slow
def test_json_output_stays_exact(make_server, tmp_path):
    out = _run(make_server(_script()), tmp_path, "--json")
    assert out.returncode == 0, out.stderr[-2000:]
    chunks = [json.loads(line) for line in out.stdout.splitlines()]
    text = "".join(c.get("content", "") for c in chunks if c["type"] == "content")
    assert text == HOSTILE
    (call,) = [c for c in chunks if c["type"] == "tool_call"]
    assert call["tool_call"]["name"] == HOSTILE_TOOL and call["tool_call"]["args"]["x"] == HOSTILE
    assert "\x1b" not in out.stdout, "JSON escapes control characters"


@pytest.mark.slow
def test_rich_markup_in_an_error_message_is_printed_not_parsed(make_server, tmp_path):
    server = make_server([Fault.http(400, message="bad [/] input [bold]x[/bold] [link=http://e]")])
    out = _run(server, tmp_path)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "MarkupError" not in out.stderr and "Traceback" not in out.stderr
    assert "bad [/] input [bold]x[/bold] [link=http://e]" in out.stdout


def test_an_empty_thread_id_is_refused_by_the_cli(make_server, tmp_path):
    server = make_server(["never"])
    out = _run(server, tmp_path, "--thread", "")
    assert out.returncode == 2
    assert "thread id is empty" in out.stderr
    assert server.requests == []


# --------------------------------------------------------------------------- real terminal
class Pty:
    """A process on a real pseudo-terminal (it is the session leader; Ctrl-C is a real
    SIGINT from the terminal's line discipline)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        self.output = b""

    def expect(self, pattern: bytes, *, since: int = 0, timeout_seconds: float = 60.0) -> int:
        """Wait for ``pattern`` after offset ``since``; returns the offset just past it."""
        deadline = time.monotonic() + timeout_seconds
        while not (found := re.search(pattern, self.output[since:])):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {pattern!r} in {self.output[-2000:]!r}")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"EOF before {pattern!r}: {self.output[-2000:]!r}")
                self.output += data
        return since + found.end()

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self) -> int:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.2)
                if ready:
                    self.output += os.read(self.fd, 65536)
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("the CLI did not exit")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass  # it had already exited and been reaped
        os.close(self.fd)


def _pty_env(tmp_path: Path) -> dict[str, str]:
    env = clean_env(tmp_path)
    env.pop("NO_COLOR", None)
    env["TERM"] = "xterm-256color"
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    return env


@pytest.mark.slow
def test_hostile_text_in_a_real_terminal_is_neutralised(make_server, tmp_path):
    server = make_server(_script())
    argv = [*CLI, "run", "--base-url", server.base_url, "--workspace", str(tmp_path), "go"]
    term = Pty(argv, _pty_env(tmp_path))
    try:
        assert term.wait() == 0
    finally:
        term.close()
    out = term.output.decode("utf-8", "replace")
    for seq in FORBIDDEN:
        # the pty turns "\n" into "\r\n": only a bare carriage return is the model's
        assert (seq not in out.replace("\r\n", "\n")) if seq == "\r" else (seq not in out), seq
    assert "\\x1b]52;c;ZXZpbA==\\x07" in out


@pytest.mark.slow
def test_ctrl_c_cancels_the_streaming_turn_and_returns_to_the_prompt(make_server, tmp_path):
    server = make_server([Reply("slow " * 200, token_delay_seconds=0.1), "second answer arrived"])
    argv = [*CLI, "chat", "--base-url", server.base_url, "--workspace", str(tmp_path)]
    term = Pty(argv, _pty_env(tmp_path))
    try:
        at = term.expect(b"you> ")
        term.send(b"first question\r")
        at = term.expect(b"slow slow", since=at)
        term.send(b"\x03")  # Ctrl-C while the reply streams
        at = term.expect(b"cancelled", since=at)
        at = term.expect(b"you> ", since=at)  # back at the prompt, the chat still running
        term.send(b"second question\r")
        at = term.expect(b"second answer arrived", since=at)
        term.expect(b"you> ", since=at)
        term.send(b"\r")  # an empty line quits
        assert term.wait() == 0
    finally:
        term.close()
    assert b"Traceback" not in term.output
    users = [m["content"] for m in server.requests[-1].messages if m["role"] == "user"]
    assert users[-1] == "second question"


# --------------------------------------------------------------------------- bash's view
# unique to this test process: another run's probe on the same machine holds its own marker
MARK = f"FAKESECRET{uuid.uuid4().hex[:12]}"
SECRETS = {
    "OPENAI_API_KEY": f"sk-{MARK}openai000000",
    "REDIS_URL": f"redis://:{MARK}redispw@127.0.0.1:6379/0",
    "LANGSMITH_API_KEY": f"lsv2_{MARK}langsmith",
}
_PROBE = r"""
import asyncio, json, os, sys
from streamagent.tools import default_tools
bash = {t.name: t for t in default_tools(sys.argv[1], sandbox=sys.argv[2])}["execute_bash"]
command = (
    'for f in /proc/[0-9]*/environ; do '
    'if grep -qa MARK "$f" 2>/dev/null; then echo "HIT $f"; fi; done; '
    'echo "PPID_ENV $(tr "\\0" " " < /proc/$PPID/environ)"; '
    'echo "PPID_CMD $(tr "\\0" " " < /proc/$PPID/cmdline)"; '
    'echo "OWN_ENV $(env | tr "\\n" " ")"'
)
out = asyncio.run(bash.ainvoke({"command": command}))
print(json.dumps({"agent_pid": os.getpid(), "output": out}))
""".replace("MARK", MARK)


def _probe(tmp_path: Path, sandbox: str) -> tuple[int, str]:
    ws = tmp_path / "ws"
    ws.mkdir(exist_ok=True)
    env = {**os.environ, **SECRETS, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ws), sandbox],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.splitlines()[-1])
    return int(result["agent_pid"]), str(result["output"])


def test_unsandboxed_bash_sees_no_secret_in_its_parent_or_itself(tmp_path):
    agent_pid, output = _probe(tmp_path, "none")
    ppid_env = next(line for line in output.splitlines() if line.startswith("PPID_ENV"))
    own_env = next(line for line in output.splitlines() if line.startswith("OWN_ENV"))
    ppid_cmd = next(line for line in output.splitlines() if line.startswith("PPID_CMD"))
    assert MARK not in ppid_env and MARK not in own_env
    assert "streamagent-launcher" in ppid_cmd, "the parent is the scrubbed launcher"
    hits = {int(line.split("/")[2]) for line in output.splitlines() if line.startswith("HIT")}
    # the documented limit (README): same user, so the agent's own /proc entry stays readable
    assert hits <= {agent_pid}, (hits, agent_pid)


@pytest.mark.sandbox
def test_sandboxed_bash_finds_no_secret_anywhere_in_proc(tmp_path):
    _, output = _probe(tmp_path, "bwrap")
    assert not [line for line in output.splitlines() if line.startswith("HIT")], output
    for field in ("PPID_ENV", "OWN_ENV"):  # (PPID_CMD, bwrap's argv, holds the command)
        line = next(line for line in output.splitlines() if line.startswith(field))
        assert MARK not in line


_NO_BWRAP = r"""
import logging, sys
logging.basicConfig(level=logging.WARNING, format="%(message)s")
from streamagent.tools import default_tools
print(sorted(t.name for t in default_tools(sys.argv[1], sandbox=sys.argv[2])))
"""


@pytest.mark.sandbox
@pytest.mark.parametrize(
    ("sandbox", "has_bash", "warning"),
    [
        ("auto", False, "execute_bash is left out"),
        ("none", True, "runs commands unconfined"),
    ],
)
def test_without_bubblewrap_auto_leaves_bash_out_and_none_warns(
    tmp_path, sandbox, has_bash, warning
):
    # a real machine without bubblewrap: this one with /usr/bin/bwrap hidden (a bwrap mount
    # namespace whose /usr/bin/bwrap is /dev/null, not executable)
    ws = tmp_path / "ws"
    ws.mkdir()
    argv = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", "/dev/null", "/usr/bin/bwrap"]
    out = subprocess.run(
        [*argv, sys.executable, "-c", _NO_BWRAP, str(ws), sandbox],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    names = out.stdout.strip()
    assert ("execute_bash" in names) is has_bash, names
    assert "read_file" in names and "git_operation" in names
    assert warning in out.stderr
