"""Safe LangChain tools confined to a workspace: ``read_file``, ``write_file``, ``execute_bash``
(bubblewrap sandbox), ``git_operation``; :func:`as_tool` for custom tools.

The security model is DESIGN.md §4; each module's docstring states its rules.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Literal

from langchain_core.tools import BaseTool

from streamagent.errors import ConfigurationError
from streamagent.tools._workspace import Workspace
from streamagent.tools.approval import (
    APPROVAL_METADATA_KEY,
    ApprovalFlag,
    mark_approval,
    parse_require_approval,
)
from streamagent.tools.bash import BashTool
from streamagent.tools.custom import as_tool
from streamagent.tools.files import ReadFileTool, WriteFileTool
from streamagent.tools.git import GIT_OPERATIONS, GitOptions, GitTool
from streamagent.tools.sandbox import SandboxPolicy, find_bwrap, sandbox_available

__all__ = ["APPROVAL_METADATA_KEY", "as_tool", "default_tools", "sandbox_available"]

SandboxMode = Literal["auto", "bwrap", "none"]

logger = logging.getLogger(__name__)


def _choose_bwrap(sandbox: SandboxMode) -> str | None:
    """The bubblewrap binary the tools use, or ``None``; the mode is checked before bubblewrap
    is probed (a probe starts a process)."""
    if sandbox not in {"auto", "bwrap", "none"}:
        raise ConfigurationError(f"sandbox must be 'auto', 'bwrap' or 'none', not {sandbox!r}")
    if sandbox == "none":
        logger.warning(
            "sandbox='none': execute_bash runs commands unconfined, as this process's user "
            "(scrubbed environment, but the host's files, processes and network are reachable)"
        )
        return None
    if sandbox_available():
        return find_bwrap()
    if sandbox == "bwrap":
        raise ConfigurationError(
            "sandbox='bwrap' but bubblewrap is not installed or cannot create a sandbox here; "
            "install it (Debian/Ubuntu: apt-get install bubblewrap) or choose sandbox='auto'"
        )
    logger.warning(
        "bubblewrap is not available: execute_bash is left out of the tools (sandbox='auto' "
        "never falls back to running commands unconfined); install bubblewrap, or pass "
        "sandbox='none' to run them unconfined"
    )
    return None


def _check_limits(**limits: float) -> None:
    for name, value in limits.items():
        if value <= 0:
            raise ConfigurationError(f"{name} must be positive, got {value}")


def default_tools(
    workspace: str | os.PathLike[str],
    *,
    sandbox: SandboxMode = "auto",
    allow_network: bool = False,
    require_approval: Iterable[str] | None = None,
    max_read_bytes: int = 1_048_576,
    max_write_bytes: int = 1_048_576,
    max_output_bytes: int = 65_536,
    bash_timeout_seconds: float = 30.0,
    allow_git_dir_writes: bool = False,
    git_network: bool = False,
    git_author_name: str = "streamagent",
    git_author_email: str = "streamagent@localhost",
    env_allowlist: Iterable[str] = ("LANG", "LC_ALL", "TZ"),
) -> list[BaseTool]:
    """The four workspace tools: ``read_file``, ``write_file``, ``execute_bash``, ``git_operation``.

    ``sandbox="auto"`` runs commands (and git) in bubblewrap when it works here; without it,
    ``execute_bash`` is left out (with a warning: never a silent fallback to an unconfined
    shell) and git runs unconfined. ``sandbox="none"`` runs commands unconfined (with a
    warning; scrubbed environment and launcher, see :func:`~streamagent.tools.bash.
    unsandboxed_launcher`) and, with no ``require_approval``, without approval: an explicit
    opt-out. ``sandbox="bwrap"`` requires bubblewrap (:class:`ConfigurationError` otherwise).
    ``require_approval`` entries are tool names or ``"git_operation:<operation>"``.

    Example:
        >>> import tempfile
        >>> from streamagent.tools import default_tools
        >>> ws = tempfile.mkdtemp()
        >>> read, write, bash, git = default_tools(ws, sandbox="none")
        >>> write.invoke({"path": "notes/hello.txt", "content": "hi"})
        'wrote 2 bytes to notes/hello.txt'
        >>> read.invoke({"path": "notes/hello.txt"})
        'hi'
    """
    _check_limits(
        max_read_bytes=max_read_bytes,
        max_write_bytes=max_write_bytes,
        max_output_bytes=max_output_bytes,
        bash_timeout_seconds=bash_timeout_seconds,
    )
    ws = Workspace.from_path(workspace)
    bwrap = _choose_bwrap(sandbox)
    policy = SandboxPolicy(
        workspace=ws.root, allow_network=allow_network, env_allowlist=tuple(env_allowlist)
    )
    options = GitOptions(
        author_name=git_author_name,
        author_email=git_author_email,
        network=git_network,
        max_output_bytes=max_output_bytes,
    )
    tools: list[BaseTool] = [
        ReadFileTool(workspace=ws, max_read_bytes=max_read_bytes),
        WriteFileTool(
            workspace=ws, max_write_bytes=max_write_bytes, allow_git_dir_writes=allow_git_dir_writes
        ),
        BashTool(
            policy=policy,
            bwrap=bwrap,
            timeout_seconds=bash_timeout_seconds,
            max_output_bytes=max_output_bytes,
        ),
        GitTool(workspace=ws, options=options, policy=policy, bwrap=bwrap),
    ]
    known = {t.name: frozenset[str]() for t in tools}
    known["git_operation"] = GIT_OPERATIONS
    flags: dict[str, ApprovalFlag] = parse_require_approval(require_approval or (), known)
    if bwrap is None and sandbox == "auto":  # no silent fallback to an unconfined shell
        tools = [t for t in tools if t.name != "execute_bash"]
    for tool in tools:
        if tool.name in flags:
            mark_approval(tool, flags[tool.name])
    return tools
