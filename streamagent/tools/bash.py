"""``execute_bash``: run a shell command in the workspace, inside bubblewrap when enabled.

The result uses ``response_format="content_and_artifact"``: the content is concise text for the
model (a status line, then the merged stdout+stderr), the artifact is a dict
``{"exit_code", "output", "duration_seconds", "timed_out", "omitted_bytes", "sandboxed"}``.
A command that fails (non-zero exit, timeout) is a *result*, not an exception: the model reads the
exit code and output. Only refused input raises :class:`~langchain_core.tools.ToolException`.

``timeout_seconds`` is clamped to the configured ``timeout_seconds`` of the tool (the model can
ask for less, never more).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from streamagent.tools.sandbox import (
    BWRAP_ENV,
    SANDBOX_PATH,
    ProcessResult,
    SandboxPolicy,
    arun_process,
    build_bwrap_argv,
    command_env,
    run_process,
)

__all__ = [
    "LAUNCHER_NAME",
    "BashInput",
    "BashTool",
    "bash_invocation",
    "format_result",
    "unsandboxed_launcher",
]

_MAX_COMMAND_CHARS = 100_000
#: ``$0`` of the scrubbed launcher (``ps`` shows it as the parent of an unsandboxed command).
LAUNCHER_NAME = "streamagent-launcher"


class BashInput(BaseModel):
    """Arguments of ``execute_bash``."""

    command: str = Field(description="A bash command line, run with `bash -c` in the workspace.")
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before the command and all its children are killed "
        "(default and maximum: the tool's configured timeout).",
    )


def bash_invocation(
    command: str, *, policy: SandboxPolicy, bwrap: str | None
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run ``command`` (pure: nothing is started)."""
    if not command.strip():
        raise ToolException("the command is empty; send a bash command line")
    if "\x00" in command:
        raise ToolException("the command contains a NUL byte; remove it")
    if len(command) > _MAX_COMMAND_CHARS:
        raise ToolException(
            f"the command is {len(command)} characters (max {_MAX_COMMAND_CHARS}); write a "
            "script with write_file and run it"
        )
    env = command_env(policy.env_allowlist, fixed=policy.extra_env)
    if bwrap is not None:
        argv = ["bash", "--noprofile", "--norc", "-c", command]
        return build_bwrap_argv(bwrap, policy, argv, env=env), dict(BWRAP_ENV)
    bash = shutil.which("bash", path=SANDBOX_PATH) or "/bin/bash"
    env["HOME"] = str(
        policy.workspace
    )  # no private home without a sandbox: keep it in the workspace
    env["TMPDIR"] = env.get("TMPDIR", "/tmp")  # noqa: S108
    return [*unsandboxed_launcher(), bash, "--noprofile", "--norc", "-c", command], env


def unsandboxed_launcher() -> list[str]:
    """argv prefix of the scrubbed launcher that runs an unsandboxed command.

    A ``sh`` started with the command's own scrubbed environment stays the command's parent
    (``; exit`` keeps it from exec-ing the command in its place), so ``/proc/$PPID/environ``
    shows that environment, not the agent's API keys and Redis URL. What it cannot hide:
    the command runs as the agent's user, so it may read ``/proc/<agent pid>/environ`` by
    searching for it; only the sandbox (its own PID namespace) removes that (README).
    """
    sh = shutil.which("sh", path=SANDBOX_PATH) or "/bin/sh"
    return [sh, "-c", '"$@"; exit "$?"', LAUNCHER_NAME]


def format_result(result: ProcessResult, *, sandboxed: bool) -> tuple[str, dict[str, Any]]:
    """Content for the model and the artifact dict."""
    status = f"exit code: {result.exit_code}; duration: {result.duration_seconds:.2f}s"
    if result.timed_out:
        status += "; TIMED OUT (the command and its children were killed)"
    if result.omitted_bytes:
        status += f"; output truncated ({result.omitted_bytes} bytes omitted from the middle)"
    body = result.output if result.output else "(no output)"
    artifact = {**result.as_dict(), "sandboxed": sandboxed}
    return f"{status}\n{body}", artifact


class BashTool(BaseTool):
    """``execute_bash``: see the module docstring."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "execute_bash"
    description: str = (
        "Run a bash command in the workspace directory (the current directory). Returns the "
        "exit code, duration and the combined stdout/stderr (long output is cut in the middle). "
        "stdin is closed: commands cannot be interactive. Files outside the workspace and "
        "the network are not available."
    )
    args_schema: type[BaseModel] = BashInput
    response_format: str = "content_and_artifact"  # type: ignore[assignment]
    handle_tool_error: bool = False

    policy: SandboxPolicy
    bwrap: str | None = None
    timeout_seconds: float = 30.0
    max_output_bytes: int = 65_536

    def _timeout(self, requested: float | None) -> float:
        return self.timeout_seconds if requested is None else min(requested, self.timeout_seconds)

    def _run(
        self, command: str, timeout_seconds: float | None = None
    ) -> tuple[str, dict[str, Any]]:
        argv, env = bash_invocation(command, policy=self.policy, bwrap=self.bwrap)
        result = run_process(
            argv,
            env=env,
            cwd=Path(self.policy.workspace),
            timeout_seconds=self._timeout(timeout_seconds),
            max_output_bytes=self.max_output_bytes,
        )
        return format_result(result, sandboxed=self.bwrap is not None)

    async def _arun(
        self, command: str, timeout_seconds: float | None = None
    ) -> tuple[str, dict[str, Any]]:
        argv, env = bash_invocation(command, policy=self.policy, bwrap=self.bwrap)
        result = await arun_process(
            argv,
            env=env,
            cwd=Path(self.policy.workspace),
            timeout_seconds=self._timeout(timeout_seconds),
            max_output_bytes=self.max_output_bytes,
        )
        return format_result(result, sandboxed=self.bwrap is not None)
