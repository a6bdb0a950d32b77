"""Run a command confined by bubblewrap (or, explicitly unconfined, with a scrubbed environment).

The pure parts (:func:`build_bwrap_argv`, :func:`command_env`, :class:`OutputCap`) decide *what*
runs; :func:`run_process` / :func:`arun_process` are thin sync/async shells that run it.

Sandbox policy (``bwrap``):

* ``--unshare-all`` (user, IPC, PID, network, UTS, cgroup namespaces); ``--share-net`` only with
  ``allow_network``; ``--die-with-parent``; ``--new-session`` (no TTY injection);
  ``--cap-drop ALL`` (we may run as root: the command keeps uid 0 but no capability).
* Filesystem: an empty root made read-only, with read-only binds of ``/usr`` and of ``/bin``,
  ``/sbin``, ``/lib``, ``/lib32``, ``/lib64``, ``/libx32`` (symlinks are recreated as symlinks);
  ``/etc`` is **not** bound whole — only the entries a shell and common tools need
  (:data:`ETC_ENTRIES`: loader cache, passwd/group, alternatives, locale, time zone, TLS
  certificates, resolver files). ``/etc/shadow``, ``/etc/ssl/private``, service configuration with
  credentials (databases, Redis, SSH keys) stay invisible. ``--proc /proc`` (the sandbox's own PID
  namespace), ``--dev /dev`` (minimal devices), private ``--tmpfs /tmp`` and a private home
  (``/home/sandbox`` tmpfs); the workspace bound read-write at its own path and used as cwd.
  Nothing else of the host (other homes, other projects, the agent's own files) exists inside.
* Environment: ``--clearenv``, then a fixed ``PATH``/``HOME``/``TMPDIR`` and the allow-listed
  variables. bwrap itself is started with ``{"PATH": "/usr/bin:/bin"}`` only, because bwrap's
  process is PID 1 inside and ``/proc/1/environ`` shows *its* environment.

Running (both modes): ``stdin`` is ``/dev/null``; the process starts a new session (its own
process group); stdout and stderr are **merged** in one pipe (order preserved) and capped at
``max_output_bytes`` keeping the head and the tail with a marker of the omitted byte count. On
timeout the whole process group gets ``SIGKILL``; when the command ends, the group is killed as
well, so background children never outlive it (inside bwrap the PID namespace ends with it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import selectors
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ETC_ENTRIES",
    "SANDBOX_HOME",
    "SANDBOX_PATH",
    "OutputCap",
    "ProcessResult",
    "SandboxPolicy",
    "arun_process",
    "build_bwrap_argv",
    "command_env",
    "find_bwrap",
    "run_process",
    "sandbox_available",
]

logger = logging.getLogger(__name__)

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
SANDBOX_HOME = "/home/sandbox"
BWRAP_ENV = {"PATH": "/usr/bin:/bin"}
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = (
    "alternatives", "bash.bashrc", "ca-certificates", "ca-certificates.conf", "debian_version",
    "environment", "gai.conf", "group", "host.conf", "hostname", "hosts", "inputrc", "ld.so.cache",
    "ld.so.conf", "ld.so.conf.d", "locale.alias", "locale.conf", "localtime", "magic",
    "magic.mime", "mime.types", "nsswitch.conf", "os-release", "passwd", "protocols",
    "resolv.conf", "services", "ssl/certs", "ssl/openssl.cnf", "timezone", "zoneinfo",
)  # fmt: skip
_KILL_GRACE_SECONDS = 1.0
_READ_CHUNK = 65536


@dataclass(frozen=True)
class SandboxPolicy:
    """What a sandboxed command may see. ``workspace`` must be a resolved directory."""

    workspace: Path
    allow_network: bool = False
    env_allowlist: tuple[str, ...] = ("LANG", "LC_ALL", "TZ")
    extra_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProcessResult:
    """Outcome of one command."""

    exit_code: int
    output: str
    duration_seconds: float
    timed_out: bool
    omitted_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "output": self.output,
            "duration_seconds": round(self.duration_seconds, 4),
            "timed_out": self.timed_out,
            "omitted_bytes": self.omitted_bytes,
        }


# ---------------------------------------------------------------------------------- pure
def command_env(
    allowlist: Iterable[str],
    *,
    source: Mapping[str, str] | None = None,
    fixed: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The command's environment: fixed PATH/HOME/TMPDIR, allow-listed names, ``fixed`` extras."""
    source = os.environ if source is None else source
    env = {"PATH": SANDBOX_PATH, "HOME": SANDBOX_HOME, "TMPDIR": "/tmp"}  # noqa: S108 - private tmpfs
    env.update({name: source[name] for name in allowlist if name in source})
    env.update(fixed or {})
    return env


def _system_binds(root: Path) -> list[str]:
    args: list[str] = []
    for d in SYSTEM_DIRS:
        p = root / d.lstrip("/")
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    for entry in ETC_ENTRIES:
        p = root / "etc" / entry
        if p.exists():
            args += ["--ro-bind", str(p), f"/etc/{entry}"]
    return args


def build_bwrap_argv(
    bwrap: str,
    policy: SandboxPolicy,
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    host_root: Path = Path("/"),
    chdir: Path | None = None,
) -> list[str]:
    """The bwrap command line that runs ``argv`` under ``policy`` with ``env``, in ``chdir``
    (default: the workspace; must be inside it)."""
    ws = str(policy.workspace)
    args = [bwrap, "--unshare-all"]
    if policy.allow_network:
        args.append("--share-net")
    args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    args += _system_binds(host_root)
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", SANDBOX_HOME]  # noqa: S108
    args += ["--bind", ws, ws, "--remount-ro", "/", "--chdir", str(chdir or ws), "--", *argv]
    return args


class OutputCap:
    """Keep the first and last ``max_bytes // 2`` bytes of a stream; count what falls between."""

    def __init__(self, max_bytes: int) -> None:
        self.head_limit = max_bytes - max_bytes // 2
        self.tail_limit = max_bytes // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_limit:
            self.tail += chunk
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def omitted(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        head = bytes(self.head).decode("utf-8", errors="replace")
        tail = bytes(self.tail).decode("utf-8", errors="replace")
        if self.omitted:
            return f"{head}\n[... {self.omitted} bytes of output omitted ...]\n{tail}"
        return head + tail


# ---------------------------------------------------------------------------------- probe
def find_bwrap() -> str | None:
    """Path of the ``bwrap`` executable, if installed."""
    return shutil.which("bwrap", path="/usr/local/bin:/usr/bin:/bin")


@functools.cache
def sandbox_available() -> bool:
    """True when bubblewrap is installed *and* can create a sandbox here (probed once)."""
    bwrap = find_bwrap()
    if bwrap is None:
        return False
    policy = SandboxPolicy(workspace=Path("/tmp").resolve())  # noqa: S108 - probe only
    argv = build_bwrap_argv(bwrap, policy, ["true"], env=command_env(()))
    try:
        proc = subprocess.run(
            argv, env=BWRAP_ENV, stdin=subprocess.DEVNULL, capture_output=True, timeout=10,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("bubblewrap probe failed: %s", exc)
        return False
    if proc.returncode != 0:
        logger.warning(
            "bubblewrap is installed but cannot create a sandbox: %s",
            proc.stderr.decode(errors="replace").strip()[:300],
        )
    return proc.returncode == 0


# ---------------------------------------------------------------------------------- running
def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _result(
    cap: OutputCap, returncode: int | None, started: float, timed_out: bool
) -> ProcessResult:
    """The outcome of a process that started at ``started`` (monotonic) and has ended."""
    return ProcessResult(
        exit_code=-1 if returncode is None else returncode,
        output=cap.text(),
        duration_seconds=time.monotonic() - started,
        timed_out=timed_out,
        omitted_bytes=cap.omitted,
    )


def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout_seconds: float,
    max_output_bytes: int,
) -> ProcessResult:
    """Run ``argv`` (sync): new session, stdin closed, merged capped output, group kill."""
    cap = OutputCap(max_output_bytes)
    started = time.monotonic()
    deadline = started + timeout_seconds
    proc = subprocess.Popen(
        list(argv), env=dict(env), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
    )  # fmt: skip
    assert proc.stdout is not None
    timed_out = False
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = proc.poll() is None
                    break
                if not sel.select(min(remaining, 0.1)):
                    if proc.poll() is not None:
                        # The command ended but something still holds the pipe: a background
                        # child. Kill the group and drain for a short grace period.
                        _kill_group(proc.pid)
                        deadline = min(deadline, time.monotonic() + _KILL_GRACE_SECONDS)
                    continue
                chunk = os.read(proc.stdout.fileno(), _READ_CHUNK)
                if not chunk:
                    break
                cap.feed(chunk)
        finally:
            _kill_group(proc.pid)
            proc.stdout.close()
            proc.wait()
    return _result(cap, proc.returncode, started, timed_out)


async def _pump(stream: asyncio.StreamReader, cap: OutputCap) -> None:
    while chunk := await stream.read(_READ_CHUNK):
        cap.feed(chunk)


async def arun_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout_seconds: float,
    max_output_bytes: int,
) -> ProcessResult:
    """Async :func:`run_process`; cancelling the task kills the process group too."""
    cap = OutputCap(max_output_bytes)
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    pump = asyncio.create_task(_pump(proc.stdout, cap))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), timeout_seconds)
        except TimeoutError:
            timed_out = True
        _kill_group(proc.pid)
        try:
            await asyncio.wait_for(asyncio.shield(pump), _KILL_GRACE_SECONDS)
        except TimeoutError:
            pump.cancel()
    finally:
        _kill_group(proc.pid)
        if not pump.done():
            pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        await proc.wait()
    return _result(cap, proc.returncode, started, timed_out)
