"""``read_file`` and ``write_file``: text files inside the workspace, nothing else.

Containment is :mod:`streamagent.tools._workspace` (real path, component-wise check, then an
``O_NOFOLLOW`` descriptor walk). On top of it:

* read: regular files only (directories, FIFOs, sockets and devices are refused *before* they
  are opened; the opened descriptor is re-checked with ``fstat`` against the same inode, and
  opened ``O_NONBLOCK`` so a FIFO swapped in cannot hang us); at most ``max_read_bytes`` are read
  whatever the reported size (``/proc``-style files report 0); NUL bytes in the first 8 KiB mean
  binary and are refused; undecodable text is reported with its byte offset. ``offset``/``limit``
  select lines (split on ``b"\\n"``, so they suit ASCII-compatible encodings).
* write: ``overwrite`` and ``create_only`` write a temp file in the target directory, ``fsync``
  it and rename it into place (``os.replace``, or ``os.link`` for ``create_only`` so an existing
  file is never clobbered); the previous file's permission bits are kept. ``append`` uses
  ``O_APPEND`` on the existing file (no read-modify-write race; a crash can leave a partial
  append, never a damaged prefix) and refuses files with several hard links. Any path component
  named ``.git`` is refused unless ``allow_git_dir_writes``. The size cap applies to the bytes
  written by one call.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Literal

from langchain_core.tools import BaseTool, ToolException
from pydantic import BaseModel, ConfigDict, Field

from streamagent.tools._workspace import Workspace, describe_kind, has_git_component

__all__ = [
    "ReadFileInput",
    "ReadFileTool",
    "WriteFileInput",
    "WriteFileTool",
    "read_text",
    "write_text",
]

_BINARY_PROBE_BYTES = 8192
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
WriteMode = Literal["overwrite", "append", "create_only"]


class ReadFileInput(BaseModel):
    """Arguments of ``read_file``."""

    path: str = Field(description="File path relative to the workspace root, e.g. 'src/app.py'.")
    encoding: str = Field(default="utf-8", description="Text encoding of the file.")
    offset: int = Field(default=0, ge=0, description="First line to return (0-based).")
    limit: int | None = Field(
        default=None, ge=1, description="Number of lines to return; omit to read the whole file."
    )


class WriteFileInput(BaseModel):
    """Arguments of ``write_file``."""

    path: str = Field(description="File path relative to the workspace root; parents are created.")
    content: str = Field(description="The full text to write (or to append).")
    mode: WriteMode = Field(
        default="overwrite",
        description="'overwrite' replaces the file, 'append' adds to its end, "
        "'create_only' fails if the file exists.",
    )
    encoding: str = Field(default="utf-8", description="Text encoding to write.")


def _check_encoding(encoding: str) -> None:
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ToolException(
            f"unknown encoding {encoding!r}; use e.g. 'utf-8' or 'latin-1'"
        ) from None


# ---------------------------------------------------------------------------------- reading
def _open_regular(ws: Workspace, rel: Path, given: str) -> int:
    """Open the regular file at ``rel`` read-only, refusing anything else before opening."""
    if not rel.parts:
        raise ToolException(f"{given!r} is a directory (the workspace root); name a file in it")
    with ws.open_parent(rel, create=False) as dfd:
        name = rel.parts[-1]
        before = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        if not stat.S_ISREG(before.st_mode):
            kind = describe_kind(before.st_mode)
            hint = " (list it with execute_bash `ls`)" if stat.S_ISDIR(before.st_mode) else ""
            raise ToolException(
                f"refused: {given!r} is {kind}; read_file reads regular files{hint}"
            )
        try:
            fd = os.open(name, _READ_FLAGS, dir_fd=dfd)
        except OSError as exc:
            raise ToolException(f"cannot open {given!r}: {exc.strerror or exc}") from None
    after = os.fstat(fd)
    if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (
        before.st_dev,
        before.st_ino,
    ):
        os.close(fd)
        raise ToolException(f"refused: {given!r} changed while it was opened; try again")
    return fd


def _decode(data: bytes, encoding: str, given: str, base_offset: int) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise ToolException(
            f"{given!r} is not valid {encoding}: undecodable byte 0x{bad} at byte offset "
            f"{base_offset + exc.start}; pass the right `encoding` (e.g. 'latin-1') or inspect "
            "the bytes with execute_bash (e.g. `xxd`)"
        ) from None


def _read_range(f: Any, offset: int, limit: int, max_bytes: int) -> tuple[bytes, int, str]:
    """Lines ``offset .. offset+limit`` as bytes, their file offset, and a note for the model."""
    position = 0
    for skipped in range(offset):
        line = f.readline(max_bytes + 1)
        if not line:
            return b"", position, f"[read_file: the file has only {skipped} lines]"
        position += len(line)
    chunks: list[bytes] = []
    size = 0
    for taken in range(limit):
        line = f.readline(max_bytes + 1)
        if not line:
            break
        if size + len(line) > max_bytes:
            note = (
                f"[read_file: stopped after {taken} lines at the {max_bytes}-byte cap; "
                f"continue with offset={offset + taken}]"
            )
            return b"".join(chunks), position, note
        chunks.append(line)
        size += len(line)
    return b"".join(chunks), position, ""


def read_text(
    ws: Workspace,
    path: str,
    *,
    encoding: str = "utf-8",
    offset: int = 0,
    limit: int | None = None,
    max_read_bytes: int,
) -> str:
    """Read a text file inside ``ws`` with every rule of the module docstring (sync)."""
    _check_encoding(encoding)
    rel = ws.resolve_existing(path)
    fd = _open_regular(ws, rel, path)
    with os.fdopen(fd, "rb") as f:
        probe = f.read(_BINARY_PROBE_BYTES)
        if b"\x00" in probe:
            raise ToolException(
                f"refused: {path!r} looks binary (NUL byte at offset {probe.index(0)}); read_file "
                "returns text only — inspect it with execute_bash (e.g. `file` or `xxd | head`)"
            )
        f.seek(0)
        if limit is None and offset == 0:
            data = f.read(max_read_bytes + 1)
            if len(data) > max_read_bytes:
                size = os.fstat(f.fileno()).st_size
                raise ToolException(
                    f"{path!r} is {max(size, len(data))} bytes, more than the "
                    f"{max_read_bytes}-byte read cap; read a range of lines with offset and limit "
                    "(e.g. offset=0, limit=200), or search it with execute_bash (`grep -n`)"
                )
            return _decode(data, encoding, path, 0)
        data, start, note = _read_range(f, offset, limit or 1 << 62, max_read_bytes)
    text = _decode(data, encoding, path, start)
    return f"{text}\n{note}" if note else text


# ---------------------------------------------------------------------------------- writing
def _existing(dfd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ToolException(f"cannot write {name!r}: {exc.strerror or exc}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _append(dfd: int, name: str, data: bytes, st: os.stat_result | None, given: str) -> None:
    if st is not None and st.st_nlink > 1:
        raise ToolException(
            f"refused: {given!r} has {st.st_nlink} hard links, so appending could change a file "
            "outside the workspace; use mode='overwrite' with the full content"
        )
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    fd = os.open(name, flags, 0o666, dir_fd=dfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ToolException(f"refused: {given!r} is not a regular file")
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(
    dfd: int, name: str, data: bytes, st: os.stat_result | None, *, create_only: bool
) -> None:
    tmp = f".{name[:100]}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666,
                 dir_fd=dfd)  # fmt: skip
    try:
        try:
            if st is not None:
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if create_only:
            os.link(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        else:
            os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            tmp = ""
        os.fsync(dfd)
    finally:
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dfd)


def write_text(
    ws: Workspace,
    path: str,
    content: str,
    *,
    mode: WriteMode = "overwrite",
    encoding: str = "utf-8",
    max_write_bytes: int,
    allow_git_dir_writes: bool = False,
) -> str:
    """Write ``content`` to a file inside ``ws`` with every rule of the module docstring (sync)."""
    _check_encoding(encoding)
    try:
        data = content.encode(encoding)
    except UnicodeEncodeError as exc:
        raise ToolException(
            f"the content cannot be encoded as {encoding} (character {exc.object[exc.start]!r} at "
            f"index {exc.start}); use encoding='utf-8'"
        ) from None
    if len(data) > max_write_bytes:
        raise ToolException(
            f"refused: the content is {len(data)} bytes, more than the "
            f"{max_write_bytes}-byte write cap; write the file in parts with mode='append'"
        )
    rel = ws.resolve_for_write(path)
    if not allow_git_dir_writes and (
        has_git_component(Path(path).parts) or has_git_component(rel.parts)
    ):
        raise ToolException(
            f"refused: {path!r} is inside a .git directory (hooks and config there would run "
            "code); change the repository with git_operation instead"
        )
    with ws.open_parent(rel, create=True) as dfd:
        name = rel.parts[-1]
        st = _existing(dfd, name)
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise ToolException(
                f"refused: {path!r} is {describe_kind(st.st_mode)}; write_file writes regular files"
            )
        if mode == "create_only" and st is not None:
            raise ToolException(f"{path!r} already exists; use mode='overwrite' to replace it")
        try:
            if mode == "append":
                _append(dfd, name, data, st, path)
            else:
                _replace(dfd, name, data, st, create_only=mode == "create_only")
        except FileExistsError:
            raise ToolException(f"{path!r} already exists; use mode='overwrite'") from None
        except OSError as exc:
            raise ToolException(f"cannot write {path!r}: {exc.strerror or exc}") from None
    verb = {"overwrite": "wrote", "append": "appended", "create_only": "created"}[mode]
    return f"{verb} {len(data)} bytes to {ws.display(ws.root / rel)}"


# ---------------------------------------------------------------------------------- tools
class _WorkspaceTool(BaseTool):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    workspace: Workspace
    handle_tool_error: bool = False


class ReadFileTool(_WorkspaceTool):
    """``read_file``: read a UTF-8 (or other) text file inside the workspace."""

    name: str = "read_file"
    description: str = (
        "Read a text file inside the workspace. `path` is relative to the workspace root. "
        "Returns the file's text. For large files pass `offset` (first line, 0-based) and "
        "`limit` (number of lines). Binary files, directories and paths outside the workspace "
        "are refused."
    )
    args_schema: type[BaseModel] = ReadFileInput
    max_read_bytes: int = 1_048_576

    def _run(
        self, path: str, encoding: str = "utf-8", offset: int = 0, limit: int | None = None
    ) -> str:
        return read_text(
            self.workspace,
            path,
            encoding=encoding,
            offset=offset,
            limit=limit,
            max_read_bytes=self.max_read_bytes,
        )

    async def _arun(
        self, path: str, encoding: str = "utf-8", offset: int = 0, limit: int | None = None
    ) -> str:
        return await asyncio.to_thread(self._run, path, encoding, offset, limit)


class WriteFileTool(_WorkspaceTool):
    """``write_file``: atomically write a text file inside the workspace."""

    name: str = "write_file"
    description: str = (
        "Write a text file inside the workspace (atomic; missing parent directories are "
        "created). `path` is relative to the workspace root; `mode` is 'overwrite' (default), "
        "'append' or 'create_only'. Paths outside the workspace and inside .git are refused."
    )
    args_schema: type[BaseModel] = WriteFileInput
    max_write_bytes: int = 1_048_576
    allow_git_dir_writes: bool = False

    def _run(
        self, path: str, content: str, mode: WriteMode = "overwrite", encoding: str = "utf-8"
    ) -> str:
        return write_text(
            self.workspace,
            path,
            content,
            mode=mode,
            encoding=encoding,
            max_write_bytes=self.max_write_bytes,
            allow_git_dir_writes=self.allow_git_dir_writes,
        )

    async def _arun(
        self, path: str, content: str, mode: WriteMode = "overwrite", encoding: str = "utf-8"
    ) -> str:
        return await asyncio.to_thread(self._run, path, content, mode, encoding)
