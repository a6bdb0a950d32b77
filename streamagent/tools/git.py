"""``git_operation``: a fixed set of git operations with structured arguments, never free argv.

Safety (DESIGN.md §4):

* The model picks an ``operation`` and typed fields; argv is built here. No shell. Paths always
  follow ``--``; refs, branch names, remotes and paths starting with ``-`` are refused; refs and
  branch names must match strict patterns (a subset of ``git check-ref-format``). Pathspecs are
  literal (``GIT_LITERAL_PATHSPECS=1``: no globs or ``:(magic)``), and every path must resolve
  inside the workspace.
* The repository must be inside the workspace: ``git rev-parse --show-toplevel
  --absolute-git-dir`` runs first with ``GIT_CEILING_DIRECTORIES`` set to the workspace's parent
  (git never discovers a repository above it); both directories, resolved, must be inside. The
  operation then runs with ``GIT_DIR`` and ``GIT_WORK_TREE`` set explicitly.
* Code execution through configuration is disabled with command-line config (which wins over
  every config file): hooks (``core.hooksPath=/dev/null``), fsmonitor, pagers, editors, askpass,
  credential helpers, ssh command, GPG programs and signing, external diff; ``--no-ext-diff
  --no-textconv`` on diff/show/log/blame. Filter, merge and diff *drivers* (named by
  ``.gitattributes``, defined in ``.git/config`` — possibly written by ``execute_bash``) are found
  with ``git config --get-regexp`` (which only reads config) and each one's command is
  overridden: ``clean``/``smudge``/``process``/``command``/``textconv`` to empty, ``required`` to
  false, merge ``driver`` to ``false``. System and global config are ignored, ``HOME`` is an empty
  directory, no terminal prompt, automatic gc/maintenance off.
* Network operations (fetch, pull, push, clone) are refused unless ``git_network``; without it
  ``GIT_ALLOW_PROTOCOL`` is empty and ``protocol.allow=never``, and with it only https/ssh/git
  are allowed (never ``ext::``/``fd::``/``file``).
* With bubblewrap, every git process runs inside the same sandbox as ``execute_bash`` (network
  shared only with ``git_network``), so even an unknown config trick stays confined.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from streamagent.tools._workspace import Workspace
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
    "GIT_OPERATIONS",
    "NETWORK_OPERATIONS",
    "GitInput",
    "GitOptions",
    "GitTool",
    "check_branch",
    "check_ref",
    "operation_argv",
]

GitOperation = Literal[
    "status", "diff", "log", "show", "add", "commit", "branch", "switch", "checkout", "restore",
    "stash", "rev_parse", "blame", "init", "fetch", "pull", "push", "clone",
]  # fmt: skip
GIT_OPERATIONS: frozenset[str] = frozenset(GitOperation.__args__)  # type: ignore[attr-defined]
NETWORK_OPERATIONS = frozenset({"fetch", "pull", "push", "clone"})

_REF = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/~^@{}-]{0,254}")
_BRANCH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]{0,254}")
_REMOTE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
_URL = re.compile(r"(https|ssh|git)://[^\s\x00]+|[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:[^\s\x00]+")
_DRIVER_KEYS = r"^(filter|diff|merge)\..+\.(clean|smudge|process|required|command|textconv|driver)$"
_DRIVER_PATTERN = re.compile(_DRIVER_KEYS, re.IGNORECASE)
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null", "core.fsmonitor=false", "core.pager=cat", "core.editor=true",
    "sequence.editor=true", "diff.external=", "core.askPass=", "credential.helper=",
    "core.sshCommand=false", "core.gitProxy=", "core.alternateRefsCommand=", "gpg.program=false",
    "gpg.ssh.program=false", "gpg.x509.program=false", "commit.gpgSign=false",
    "tag.gpgSign=false", "log.showSignature=false", "gc.auto=0", "maintenance.auto=false",
    "submodule.recurse=false", "fetch.recurseSubmodules=false", "color.ui=false",
    "core.quotePath=false", "init.templateDir=", "advice.detachedHead=false",
)  # fmt: skip
_OFFLINE_CONFIG = ("protocol.allow=never",)
_TIMEOUT_SECONDS = 60.0


class GitInput(BaseModel):
    """Arguments of ``git_operation``."""

    operation: GitOperation = Field(
        description="The git operation. rev_parse resolves `ref` to a commit id; fetch/pull/"
        "push/clone work only when the network is enabled."
    )
    repo: str = Field(default=".", description="Repository directory, relative to the workspace.")
    paths: list[str] = Field(
        default_factory=list,
        description="Files (relative to the repository) for add/commit/diff/log/show/restore/"
        "checkout/stash push/blame (exactly one for blame).",
    )
    ref: str | None = Field(
        default=None,
        description="A commit, branch, tag or range (e.g. 'HEAD~1', 'main', 'v1.0', 'a..b') for "
        "diff/log/show/blame/rev_parse/checkout/restore (source), or the start point of a new "
        "branch. show also takes 'REV:path' (a file as of REV, path from the repository root).",
    )
    message: str | None = Field(default=None, description="Commit (or stash push) message.")
    branch: str | None = Field(
        default=None, description="Branch name for branch (create), switch, checkout, pull, push."
    )
    create: bool = Field(default=False, description="switch/checkout: create `branch` first.")
    staged: bool = Field(default=False, description="diff: show staged changes; restore: unstage.")
    max_count: int = Field(default=20, ge=1, le=1000, description="log: number of commits.")
    stash_action: Literal["push", "pop", "list"] = Field(
        default="list", description="stash: push, pop or list."
    )
    remote: str | None = Field(default=None, description="fetch/pull/push: remote name.")
    url: str | None = Field(default=None, description="clone: https://, ssh:// or git:// URL.")


@dataclass(frozen=True)
class GitOptions:
    """Fixed settings of the git tool."""

    author_name: str = "streamagent"
    author_email: str = "streamagent@localhost"
    network: bool = False
    max_output_bytes: int = 65_536
    timeout_seconds: float = _TIMEOUT_SECONDS


@dataclass(frozen=True)
class _Call:
    argv: list[str]
    env: dict[str, str]
    cwd: Path


# ---------------------------------------------------------------------------------- validation
def check_ref(value: str, what: str = "ref") -> str:
    """Refuse refs that could be options or are not plain revision names."""
    if value.startswith("-"):
        raise ToolException(f"refused: {what} {value!r} starts with '-' (it would be an option)")
    if not _REF.fullmatch(value) or value.endswith((".lock", "/", ".")) or "//" in value:
        raise ToolException(
            f"refused: {what} {value!r} is not a plain revision (letters, digits, ._/-~^@{{}} "
            "only, e.g. 'HEAD~1', 'main', 'v1.0', 'main..feature')"
        )
    return value


def check_branch(value: str) -> str:
    """Refuse branch names that could be options or violate ``check-ref-format --branch``."""
    if value.startswith("-"):
        raise ToolException(f"refused: branch {value!r} starts with '-' (it would be an option)")
    bad = ".." in value or "//" in value or value.endswith((".lock", "/", "."))
    if bad or not _BRANCH.fullmatch(value) or "/." in value:
        raise ToolException(
            f"refused: {value!r} is not a valid branch name (letters, digits, . _ / - ; no '..')"
        )
    return value


def _check_paths(ws: Workspace, top: Path, paths: list[str]) -> list[str]:
    for p in paths:
        if not p or p.startswith("-") or "\x00" in p:
            raise ToolException(f"refused: path {p!r} is empty, has a NUL or starts with '-'")
        full = Path(p) if Path(p).is_absolute() else top / p
        ws.contained(full.resolve(strict=False), p)
    return list(paths)


def _need(value: Any, field: str, op: str) -> Any:
    if not value:
        raise ToolException(f"git {op} needs `{field}`")
    return value


# ---------------------------------------------------------------------------------- argv
def _inspect_argv(a: GitInput, paths: list[str]) -> list[str]:
    op = a.operation
    ref = [check_ref(a.ref)] if a.ref else []
    if op == "status":
        return ["status", "--short", "--branch", "--", *paths]
    if op == "diff":
        staged = ["--staged"] if a.staged else []
        return ["diff", "--no-ext-diff", "--no-textconv", "--no-color", *staged, *ref, "--", *paths]
    if op == "log":
        fmt = ["--format=%h %ad %an%d %s", "--date=short", f"--max-count={a.max_count}"]
        return ["log", "--no-ext-diff", "--no-textconv", "--no-color", *fmt, *ref, "--", *paths]
    if op == "show":
        show = ["show", "--no-ext-diff", "--no-textconv", "--no-color"]
        return [*show, *(ref or ["HEAD"]), "--", *paths]
    if op == "blame":
        if len(paths) != 1:
            raise ToolException("git blame needs exactly one path in `paths`")
        return ["blame", "--no-textconv", *ref, "--", *paths]
    if op == "rev_parse":
        return ["rev-parse", "--verify", check_ref(_need(a.ref, "ref", op))]
    raise AssertionError(op)  # pragma: no cover


def _show_blob_argv(ref: str, ws: Workspace, top: Path, paths: list[str]) -> list[str]:
    """``git show REV:path`` (a file as of a revision): the revision is checked as a ref, the
    path as a workspace path relative to the repository root (``REV:./p`` / ``REV:../p``,
    relative to the working directory in git, are refused: give it from the root)."""
    rev, path = ref.split(":", 1)
    check_ref(rev)
    if path.startswith(("./", "../")) or path in {".", ".."}:
        raise ToolException(
            f"refused: {ref!r}: give the path after ':' relative to the repository root"
        )
    if path:
        _check_paths(ws, top, [path])
    show = ["show", "--no-ext-diff", "--no-textconv", "--no-color"]
    return [*show, f"{rev}:{path}", "--", *paths]


def _change_argv(a: GitInput, paths: list[str]) -> list[str]:  # noqa: PLR0911
    op = a.operation
    ref = [check_ref(a.ref)] if a.ref else []
    if op == "add":
        return ["add", "--", *_need(paths, "paths", op)]
    if op == "commit":
        msg = _need(a.message, "message", op)
        return ["commit", "--no-verify", "--no-gpg-sign", "--message", msg, "--", *paths]
    if op == "branch":
        if a.branch is None:
            return ["branch", "--list", "--no-color"]
        return ["branch", check_branch(a.branch), *ref]
    if op in {"switch", "checkout"}:
        return _switch_argv(a, paths, ref)
    if op == "restore":
        source = [f"--source={ref[0]}"] if ref else []
        staged = ["--staged"] if a.staged else []
        return ["restore", *staged, *source, "--", *_need(paths, "paths", op)]
    if op == "stash":
        if a.stash_action == "push":
            msg = ["--message", a.message] if a.message else []
            return ["stash", "push", *msg, "--", *paths]
        return ["stash", a.stash_action]
    raise AssertionError(op)  # pragma: no cover


def _switch_argv(a: GitInput, paths: list[str], ref: list[str]) -> list[str]:
    op = a.operation
    if paths:
        if op == "switch":
            raise ToolException("git switch takes no paths; use restore or checkout for files")
        return ["checkout", *ref, "--", *paths]
    if a.create:
        flag = "--create" if op == "switch" else "-b"
        return [op, flag, check_branch(_need(a.branch, "branch", op)), *ref]
    target = check_branch(a.branch) if a.branch else check_ref(_need(a.ref, "ref or branch", op))
    return ["switch", target] if op == "switch" else ["checkout", target, "--"]


def _network_argv(a: GitInput, paths: list[str]) -> list[str]:
    op = a.operation
    remote = []
    if a.remote:
        if a.remote.startswith("-") or not _REMOTE.fullmatch(a.remote):
            raise ToolException(f"refused: remote {a.remote!r} must be a plain remote name")
        remote = [a.remote]
    branch = [check_branch(a.branch)] if a.branch and remote else []
    if op == "fetch":
        return ["fetch", "--no-recurse-submodules", *remote]
    if op == "pull":
        return ["pull", "--ff-only", "--no-recurse-submodules", *remote, *branch]
    if op == "push":
        return ["push", *remote, *branch]
    url = _need(a.url, "url", op)
    if url.startswith("-") or not _URL.fullmatch(url):
        raise ToolException("refused: clone `url` must be an https://, ssh:// or git:// URL")
    return ["clone", "--no-recurse-submodules", "--", url, *_need(paths, "paths", op)[:1]]


def operation_argv(a: GitInput, ws: Workspace, top: Path) -> list[str]:
    """The git subcommand argv for ``a`` (pure; ``top`` is the repository's work tree)."""
    paths = _check_paths(ws, top, a.paths)
    if a.operation == "show" and a.ref and ":" in a.ref:
        return _show_blob_argv(a.ref, ws, top, paths)
    if a.operation in {"status", "diff", "log", "show", "blame", "rev_parse"}:
        return _inspect_argv(a, paths)
    if a.operation in NETWORK_OPERATIONS:
        return _network_argv(a, paths)
    return _change_argv(a, paths)


# ---------------------------------------------------------------------------------- flow
class _GitFlow:
    """The steps of one operation as a generator: yields calls, receives their results."""

    def __init__(self, ws: Workspace, options: GitOptions, home: str) -> None:
        self.ws = ws
        self.options = options
        self.home = home

    def base_env(self) -> dict[str, str]:
        o = self.options
        return {
            "HOME": self.home, "XDG_CONFIG_HOME": self.home, "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat",
            "PAGER": "cat", "GIT_EDITOR": "true", "GIT_SEQUENCE_EDITOR": "true",
            "GIT_ASKPASS": "/bin/false", "SSH_ASKPASS": "/bin/false",
            "GIT_PROTOCOL_FROM_USER": "0", "GIT_LITERAL_PATHSPECS": "1",
            "GIT_CEILING_DIRECTORIES": str(self.ws.root.parent), "GIT_OPTIONAL_LOCKS": "0",
            "GIT_AUTHOR_NAME": o.author_name, "GIT_AUTHOR_EMAIL": o.author_email,
            "GIT_COMMITTER_NAME": o.author_name, "GIT_COMMITTER_EMAIL": o.author_email,
            "GIT_ALLOW_PROTOCOL": "https:ssh:git" if o.network else "",
            "GIT_SSH_COMMAND": "ssh -o BatchMode=yes" if o.network else "false",
        }  # fmt: skip

    def global_args(self, overrides: list[str]) -> list[str]:
        config = [*_SAFE_CONFIG, *([] if self.options.network else _OFFLINE_CONFIG), *overrides]
        args = ["git", "--no-pager"]
        for item in config:
            args += ["-c", item]
        return args

    def run(self, a: GitInput) -> Generator[_Call, ProcessResult, str]:
        if a.operation in NETWORK_OPERATIONS and not self.options.network:
            raise ToolException(
                f"refused: git {a.operation} needs the network, which is disabled for this agent; "
                "work with the local repository"
            )
        target = self.ws.root / self.ws.resolve_existing(a.repo)
        if not target.is_dir():
            raise ToolException(f"`repo` {a.repo!r} is not a directory")
        if a.operation in {"init", "clone"}:
            argv = ["init", "--quiet", str(target)] if a.operation == "init" else None
            argv = argv or operation_argv(a, self.ws, target)
            result = yield _Call([*self.global_args([]), *argv], self.base_env(), target)
            return self.finish(a, result)
        top, git_dir = yield from self.locate(target, a.repo)
        env = {**self.base_env(), "GIT_DIR": str(git_dir), "GIT_WORK_TREE": str(top)}
        probe = [*self.global_args([]), "config", "-z", "--name-only", "--get-regexp", _DRIVER_KEYS]
        found = yield _Call(probe, env, top)
        keys = [k.strip() for k in found.output.split("\x00")]
        overrides = [_neutral(k) for k in keys if _DRIVER_PATTERN.match(k) and "=" not in k]
        argv = operation_argv(a, self.ws, top)
        result = yield _Call([*self.global_args(overrides), *argv], env, top)
        return self.finish(a, result)

    def locate(
        self, target: Path, given: str
    ) -> Generator[_Call, ProcessResult, tuple[Path, Path]]:
        argv = [*self.global_args([]), "rev-parse", "--show-toplevel", "--absolute-git-dir"]
        result = yield _Call(argv, self.base_env(), target)
        lines = result.output.strip().splitlines()
        if result.exit_code != 0 or len(lines) != 2:
            raise ToolException(
                f"no git work tree at {given!r} inside the workspace; create one with "
                "operation='init'"
            )
        top, git_dir = (Path(line).resolve() for line in lines)
        self.ws.contained(top, given)
        self.ws.contained(git_dir, f"{given} (its .git directory)")
        return top, git_dir

    def finish(self, a: GitInput, result: ProcessResult) -> str:
        text = result.output.strip()
        if result.timed_out:
            raise ToolException(f"git {a.operation} timed out and was killed")
        if result.exit_code != 0:
            raise ToolException(f"git {a.operation} failed (exit {result.exit_code}): {text}")
        return text or f"git {a.operation}: done (no output)"


def _neutral(key: str) -> str:
    name = key.rsplit(".", 1)[-1]
    if name == "required":
        return f"{key}=false"
    if name == "driver":
        return f"{key}=false"
    return f"{key}="


# ---------------------------------------------------------------------------------- tool
class GitTool(BaseTool):
    """``git_operation``: see the module docstring."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "git_operation"
    description: str = (
        "Run one git operation on a repository inside the workspace: status, diff, log, show, "
        "add, commit, branch, switch, checkout, restore, stash, rev_parse, blame, init (fetch, "
        "pull, push, clone only if the network is enabled). Give structured fields (paths, ref, "
        "message, branch, ...), not command-line options."
    )
    args_schema: type[BaseModel] = GitInput
    handle_tool_error: bool = False

    workspace: Workspace
    options: GitOptions = GitOptions()
    policy: SandboxPolicy
    bwrap: str | None = None

    def _wrap(self, call: _Call) -> tuple[list[str], dict[str, str]]:
        if self.bwrap is None:
            git = shutil.which("git", path=SANDBOX_PATH) or "git"
            env = {"PATH": SANDBOX_PATH, **{k: v for k, v in call.env.items() if k != "PATH"}}
            return [git, *call.argv[1:]], env
        sandboxed = {**call.env, "HOME": "/home/sandbox", "XDG_CONFIG_HOME": "/home/sandbox"}
        env = command_env(self.policy.env_allowlist, fixed=sandboxed)
        policy = SandboxPolicy(
            workspace=self.policy.workspace,
            allow_network=self.options.network,
            env_allowlist=self.policy.env_allowlist,
        )
        argv = build_bwrap_argv(self.bwrap, policy, call.argv, env=env, chdir=call.cwd)
        return argv, dict(BWRAP_ENV)

    def _execute(self, call: _Call) -> ProcessResult:
        argv, env = self._wrap(call)
        return run_process(
            argv, env=env, cwd=call.cwd, timeout_seconds=self.options.timeout_seconds,
            max_output_bytes=self.options.max_output_bytes,
        )  # fmt: skip

    async def _aexecute(self, call: _Call) -> ProcessResult:
        argv, env = self._wrap(call)
        return await arun_process(argv, env=env, cwd=call.cwd,
                                  timeout_seconds=self.options.timeout_seconds,
                                  max_output_bytes=self.options.max_output_bytes)  # fmt: skip

    def _run(self, **kwargs: Any) -> str:
        args = GitInput.model_validate(kwargs)
        with tempfile.TemporaryDirectory(prefix="streamagent-git-home-") as home:
            flow = _GitFlow(self.workspace, self.options, home).run(args)
            try:
                call = next(flow)
                while True:
                    call = flow.send(self._execute(call))
            except StopIteration as done:
                return str(done.value)

    async def _arun(self, **kwargs: Any) -> str:
        args = GitInput.model_validate(kwargs)
        with tempfile.TemporaryDirectory(prefix="streamagent-git-home-") as home:
            flow = _GitFlow(self.workspace, self.options, home).run(args)
            try:
                call = next(flow)
                while True:
                    call = flow.send(await self._aexecute(call))
            except StopIteration as done:
                return str(done.value)
