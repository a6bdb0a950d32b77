"""Workspace containment: every path a tool touches must stay inside one directory.

Rules (DESIGN.md §4):

* A path is taken relative to the workspace; an absolute path is accepted only if it lies inside.
* The *real* path (every symlink followed) is checked by path components
  (:meth:`pathlib.Path.is_relative_to` on resolved paths), never by string prefix, so
  ``/work/ws-evil`` is not inside ``/work/ws``.
* The file is then reached by walking the resolved components one by one from an open
  descriptor of the workspace with ``O_NOFOLLOW``: a symlink swapped in after the check (a
  TOCTOU race) makes the walk fail instead of leading out. Parent directories that ``write_file``
  creates are created the same way, component by component, inside the workspace only.

Everything here is synchronous, plain ``os`` calls; the tools run it in a thread for async use.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from langchain_core.tools import ToolException

from streamagent.errors import ConfigurationError

__all__ = [
    "MAX_NAME_BYTES",
    "MAX_PATH_BYTES",
    "MAX_WRITE_DEPTH",
    "Workspace",
    "describe_kind",
    "has_git_component",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FORBIDDEN_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))
#: Longest file or directory name and whole path, in bytes (Linux ``NAME_MAX`` / ``PATH_MAX``).
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096
#: Deepest path ``write_file`` writes (it creates missing directories, one per level).
MAX_WRITE_DEPTH = 64


def describe_kind(mode: int) -> str:
    """A human word for a non-regular file type (for refusal messages)."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "not a regular file"


def has_git_component(parts: tuple[str, ...]) -> bool:
    """True when any component is named ``.git`` (case-insensitive: macOS/Windows filesystems)."""
    return any(p.casefold() == ".git" for p in parts)


def _check_lengths(path: str) -> None:
    """Refuse a path the filesystem would refuse: a component over ``NAME_MAX`` bytes or a
    path over ``PATH_MAX`` bytes (a plain :class:`ToolException`, not ``OSError`` 36)."""
    encoded = os.fsencode(path) if _encodable(path) else path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_BYTES:
        raise ToolException(
            f"refused: the path is {len(encoded)} bytes long (max {MAX_PATH_BYTES}); use a "
            "shorter path"
        )
    for part in encoded.split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            shown = part[:40].decode("utf-8", "replace")
            raise ToolException(
                f"refused: the name {shown + '...'!r} is {len(part)} bytes long (max "
                f"{MAX_NAME_BYTES} per file or directory name); use a shorter name"
            )


def _encodable(path: str) -> bool:
    try:
        os.fsencode(path)
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class Workspace:
    """A resolved workspace root. Build it with :meth:`from_path` (checks it exists)."""

    root: Path

    @classmethod
    def from_path(cls, path: str | os.PathLike[str]) -> Workspace:
        """Resolve ``path``; refuse a missing directory, ``/`` and kernel filesystems."""
        try:
            root = Path(path).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ConfigurationError(f"workspace {os.fspath(path)!r} does not exist") from exc
        if not root.is_dir():
            raise ConfigurationError(f"workspace {os.fspath(path)!r} is not a directory")
        if root == Path("/") or any(root.is_relative_to(f) for f in _FORBIDDEN_ROOTS):
            raise ConfigurationError(
                f"workspace {str(root)!r} is not allowed: choose a project directory, "
                "not / or a kernel filesystem (/proc, /sys, /dev)"
            )
        return cls(root=root)

    # ------------------------------------------------------------------ pure path logic
    def display(self, path: Path) -> str:
        """``path`` relative to the workspace when inside (messages never show host paths)."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return "<outside the workspace>"
        return rel.as_posix() or "."

    def candidate(self, path: str) -> Path:
        """The lexical target of ``path`` (not resolved); refuses empty paths and NUL bytes."""
        if not path or not path.strip():
            raise ToolException("the path is empty; give a file path relative to the workspace")
        if "\x00" in path:
            raise ToolException("the path contains a NUL byte; give a plain file path")
        _check_lengths(path)
        given = Path(path)
        return given if given.is_absolute() else self.root / given

    def contained(self, resolved: Path, given: str) -> Path:
        """Return ``resolved`` relative to the root, or refuse (component-wise check)."""
        if not resolved.is_relative_to(self.root):
            raise ToolException(
                f"refused: {given!r} resolves outside the workspace (paths must stay inside the "
                "workspace after following symlinks and '..'); use a path relative to the "
                "workspace root"
            )
        return resolved.relative_to(self.root)

    def resolve_existing(self, path: str) -> Path:
        """The real path of an existing file inside the workspace, relative to the root."""
        target = self.candidate(path)
        try:
            resolved = target.resolve(strict=True)
        except FileNotFoundError:
            # Check containment of what we can resolve before saying "not found", so the
            # message never confirms the existence of files outside the workspace.
            self.contained(target.resolve(strict=False), path)
            raise ToolException(
                f"{path!r} does not exist in the workspace; list files with execute_bash "
                "(e.g. `ls`) or check the spelling"
            ) from None
        except OSError as exc:
            raise ToolException(f"cannot resolve {path!r}: {exc.strerror or exc}") from None
        except RuntimeError:
            raise ToolException(f"cannot resolve {path!r}: symlink loop") from None
        return self.contained(resolved, path)

    def resolve_for_write(self, path: str) -> Path:
        """The real target of a (possibly new) file inside the workspace, relative to the root."""
        target = self.candidate(path)
        try:
            resolved = target.resolve(strict=False)
        except (OSError, RuntimeError) as exc:
            raise ToolException(f"cannot resolve {path!r}: {exc}") from None
        rel = self.contained(resolved, path)
        if not rel.parts:
            raise ToolException(f"{path!r} is the workspace directory itself; name a file")
        if len(rel.parts) > MAX_WRITE_DEPTH:
            raise ToolException(
                f"refused: the path is {len(rel.parts)} levels deep (max {MAX_WRITE_DEPTH}); "
                "use a flatter layout"
            )
        return rel

    # ------------------------------------------------------------------ descriptor walk
    @contextmanager
    def open_parent(self, rel: Path, *, create: bool) -> Iterator[int]:
        """Yield an fd of ``rel``'s parent reached from the root without following symlinks.

        With ``create``, missing directories are made one at a time (mode 0o777 & umask)
        inside the directory just opened, so they can only ever land inside the workspace.
        """
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            walked: list[str] = []
            for part in rel.parts[:-1]:
                walked.append(part)
                fd = self._step(fd, part, walked, create=create)
            yield fd
        finally:
            os.close(fd)

    def _step(self, fd: int, part: str, walked: list[str], *, create: bool) -> int:
        """Open ``part`` under ``fd``; closes ``fd`` only on success (the caller closes it else)."""
        where = "/".join(walked)
        try:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise ToolException(
                    f"directory {where!r} does not exist in the workspace"
                ) from None
            # created concurrently? the O_NOFOLLOW open below decides
            try:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise self._walk_refusal(where, exc) from None
        except OSError as exc:
            raise self._walk_refusal(where, exc) from None
        os.close(fd)
        return nxt

    @staticmethod
    def _walk_refusal(where: str, exc: OSError) -> ToolException:
        return ToolException(
            f"refused: {where!r} is not a plain directory inside the workspace "
            f"({exc.strerror or exc}); it may be a file or a symlink that changed after the "
            "check — use another path"
        )
