"""Attack tests for read_file / write_file: real files, real symlinks, real FIFOs."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from langchain_core.tools import ToolException

from streamagent.errors import ConfigurationError
from streamagent.tools import default_tools


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    ws = tmp_path / "ws"
    evil = tmp_path / "ws-evil"
    outside = tmp_path / "outside"
    for d in (ws, evil, outside):
        d.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    (evil / "secret.txt").write_text("EVIL SECRET")
    return {"ws": ws, "evil": evil, "outside": outside, "tmp": tmp_path}


@pytest.fixture
def tools(layout: dict[str, Path]):
    read, write, _bash, _git = default_tools(
        layout["ws"], sandbox="none", max_read_bytes=1000, max_write_bytes=1000
    )
    return read, write


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


# ----------------------------------------------------------------------------- read
def test_read_returns_text_and_line_range(tools, layout):
    read, _ = tools
    (layout["ws"] / "f.txt").write_text("a\nb\nc\n")
    assert read.invoke({"path": "f.txt"}) == "a\nb\nc\n"
    assert read.invoke({"path": "f.txt", "offset": 1, "limit": 1}) == "b\n"
    assert read.invoke({"path": str(layout["ws"] / "f.txt")}) == "a\nb\nc\n"


@pytest.mark.parametrize(
    "path",
    ["../outside/secret.txt", "../ws-evil/secret.txt", "sub/../../outside/secret.txt"],
)
def test_read_refuses_relative_escapes(tools, layout, path):
    read, _ = tools
    (layout["ws"] / "sub").mkdir()
    with pytest.raises(ToolException, match="outside the workspace"):
        read.invoke({"path": path})


def test_read_refuses_absolute_outside_and_sibling_prefix(tools, layout):
    read, _ = tools
    for target in (layout["outside"] / "secret.txt", layout["evil"] / "secret.txt"):
        with pytest.raises(ToolException, match="outside the workspace"):
            read.invoke({"path": str(target)})


def test_read_refuses_symlinked_file_and_dir_leading_out(tools, layout):
    read, _ = tools
    (layout["ws"] / "link.txt").symlink_to(layout["outside"] / "secret.txt")
    (layout["ws"] / "linkdir").symlink_to(layout["outside"])
    for path in ("link.txt", "linkdir/secret.txt"):
        with pytest.raises(ToolException, match="outside the workspace") as info:
            read.invoke({"path": path})
        assert "TOP SECRET" not in str(info.value)


def test_read_follows_symlink_that_stays_inside(tools, layout):
    read, _ = tools
    (layout["ws"] / "real.txt").write_text("inside")
    (layout["ws"] / "alias.txt").symlink_to("real.txt")
    assert read.invoke({"path": "alias.txt"}) == "inside"


def test_read_refuses_missing_outside_file_without_confirming_existence(tools):
    read, _ = tools
    with pytest.raises(ToolException, match="outside the workspace"):
        read.invoke({"path": "../nope/none.txt"})


def test_read_refuses_fifo_without_hanging(tools, layout):
    read, _ = tools
    os.mkfifo(layout["ws"] / "pipe")
    with pytest.raises(ToolException, match="FIFO"):
        read.invoke({"path": "pipe"})


def test_read_refuses_dev_zero_via_symlink(tools, layout):
    read, _ = tools
    (layout["ws"] / "zero").symlink_to("/dev/zero")
    with pytest.raises(ToolException, match="outside the workspace"):
        read.invoke({"path": "zero"})


def test_read_refuses_device_node_inside_workspace(tools, layout):
    read, _ = tools
    os.mknod(layout["ws"] / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    with pytest.raises(ToolException, match="device"):
        read.invoke({"path": "null"})


def test_read_refuses_directory_saying_so(tools, layout):
    read, _ = tools
    (layout["ws"] / "d").mkdir()
    with pytest.raises(ToolException, match="is a directory"):
        read.invoke({"path": "d"})


def test_read_refuses_binary(tools, layout):
    read, _ = tools
    (layout["ws"] / "b.bin").write_bytes(b"abc\x00def")
    with pytest.raises(ToolException, match="binary"):
        read.invoke({"path": "b.bin"})


def test_read_oversized_file_refused_with_range_hint_and_range_works(tools, layout):
    read, _ = tools
    (layout["ws"] / "big.txt").write_text("".join(f"line {i}\n" for i in range(500)))
    with pytest.raises(ToolException, match="offset and limit"):
        read.invoke({"path": "big.txt"})
    assert read.invoke({"path": "big.txt", "offset": 10, "limit": 2}) == "line 10\nline 11\n"
    capped = read.invoke({"path": "big.txt", "offset": 0, "limit": 400})
    assert "continue with offset=" in capped


def test_read_reports_undecodable_byte_offset(tools, layout):
    read, _ = tools
    (layout["ws"] / "latin.txt").write_bytes(b"caf\xe9 au lait")
    with pytest.raises(ToolException, match=r"0xe9 at byte offset 3"):
        read.invoke({"path": "latin.txt"})
    assert read.invoke({"path": "latin.txt", "encoding": "latin-1"}) == "café au lait"


async def test_async_read_matches_sync(tools, layout):
    read, _ = tools
    (layout["ws"] / "f.txt").write_text("async")
    assert await read.ainvoke({"path": "f.txt"}) == "async"


# ----------------------------------------------------------------------------- write
def test_write_creates_parents_atomically_and_preserves_mode(tools, layout):
    _, write = tools
    assert write.invoke({"path": "a/b/c.txt", "content": "x"}) == "wrote 1 bytes to a/b/c.txt"
    target = layout["ws"] / "a/b/c.txt"
    target.chmod(0o750)
    write.invoke({"path": "a/b/c.txt", "content": "yy"})
    assert target.read_text() == "yy"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert [p.name for p in target.parent.iterdir()] == ["c.txt"]  # no temp file left


def test_write_append_and_create_only(tools, layout):
    _, write = tools
    write.invoke({"path": "log.txt", "content": "1\n", "mode": "append"})
    write.invoke({"path": "log.txt", "content": "2\n", "mode": "append"})
    assert (layout["ws"] / "log.txt").read_text() == "1\n2\n"
    with pytest.raises(ToolException, match="already exists"):
        write.invoke({"path": "log.txt", "content": "3", "mode": "create_only"})
    assert (layout["ws"] / "log.txt").read_text() == "1\n2\n"


@pytest.mark.parametrize(
    "path", ["../outside/new.txt", "../ws-evil/secret.txt", "x/../../outside/secret.txt"]
)
def test_write_refuses_escapes_and_changes_nothing_outside(tools, layout, path):
    _, write = tools
    before = snapshot(layout["tmp"])
    with pytest.raises(ToolException, match="outside the workspace"):
        write.invoke({"path": path, "content": "pwned"})
    assert snapshot(layout["tmp"]) == before


def test_write_refuses_absolute_outside(tools, layout):
    _, write = tools
    target = layout["outside"] / "secret.txt"
    with pytest.raises(ToolException, match="outside the workspace"):
        write.invoke({"path": str(target), "content": "pwned"})
    assert target.read_text() == "TOP SECRET"


def test_write_refuses_symlinked_file_and_parent_dirs_leading_out(tools, layout):
    _, write = tools
    (layout["ws"] / "link.txt").symlink_to(layout["outside"] / "secret.txt")
    (layout["ws"] / "linkdir").symlink_to(layout["outside"])
    before = snapshot(layout["outside"])
    for path in ("link.txt", "linkdir/new.txt", "linkdir/deep/er/new.txt"):
        with pytest.raises(ToolException, match="outside the workspace"):
            write.invoke({"path": path, "content": "pwned"})
    assert snapshot(layout["outside"]) == before
    assert sorted(p.name for p in layout["outside"].iterdir()) == ["secret.txt"]


def test_write_walk_refuses_symlink_swapped_in_after_resolution(layout):
    # The descriptor walk itself (O_NOFOLLOW per component) refuses a symlinked parent even
    # if the resolution step was bypassed, as in a TOCTOU swap.
    from streamagent.tools._workspace import Workspace

    ws = Workspace.from_path(layout["ws"])
    (layout["ws"] / "swapped").symlink_to(layout["outside"])
    with pytest.raises(ToolException, match="not a plain directory"):
        with ws.open_parent(Path("swapped/new.txt"), create=True):
            pass
    assert not (layout["outside"] / "new.txt").exists()


def test_write_refuses_git_dir_unless_allowed(tools, layout):
    _, write = tools
    hooks = layout["ws"] / ".git" / "hooks"
    hooks.mkdir(parents=True)
    for path in (".git/hooks/post-commit", ".GIT/config", "sub/.Git/hooks/x"):
        with pytest.raises(ToolException, match=r"\.git"):
            write.invoke({"path": path, "content": "#!/bin/sh\ntouch /tmp/pwned"})
    assert list(hooks.iterdir()) == []
    _, allowed, _, _ = default_tools(layout["ws"], sandbox="none", allow_git_dir_writes=True)
    allowed.invoke({"path": ".git/info/exclude", "content": "*.log\n"})
    assert (layout["ws"] / ".git/info/exclude").read_text() == "*.log\n"


def test_write_refuses_git_dir_reached_through_symlink(tools, layout):
    _, write = tools
    (layout["ws"] / ".git").mkdir()
    (layout["ws"] / "g").symlink_to(".git")
    with pytest.raises(ToolException, match=r"\.git"):
        write.invoke({"path": "g/config", "content": "[core]\n"})
    assert not (layout["ws"] / ".git/config").exists()


def test_write_size_cap(tools, layout):
    _, write = tools
    with pytest.raises(ToolException, match="write cap"):
        write.invoke({"path": "big.txt", "content": "x" * 1001})
    assert not (layout["ws"] / "big.txt").exists()


def test_write_refuses_fifo_and_directory_targets(tools, layout):
    _, write = tools
    os.mkfifo(layout["ws"] / "pipe")
    (layout["ws"] / "d").mkdir()
    with pytest.raises(ToolException, match="FIFO"):
        write.invoke({"path": "pipe", "content": "x"})
    with pytest.raises(ToolException, match="directory"):
        write.invoke({"path": "d", "content": "x"})


def test_append_refuses_hard_linked_file(tools, layout):
    _, write = tools
    os.link(layout["outside"] / "secret.txt", layout["ws"] / "hl.txt")
    with pytest.raises(ToolException, match="hard links"):
        write.invoke({"path": "hl.txt", "content": "pwned", "mode": "append"})
    assert (layout["outside"] / "secret.txt").read_text() == "TOP SECRET"


async def test_async_write(tools, layout):
    _, write = tools
    await write.ainvoke({"path": "w.txt", "content": "async"})
    assert (layout["ws"] / "w.txt").read_text() == "async"


def test_workspace_must_exist_and_not_be_root(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        default_tools(tmp_path / "missing", sandbox="none")
    with pytest.raises(ConfigurationError, match="not allowed"):
        default_tools("/", sandbox="none")


def test_an_unknown_sandbox_mode_is_refused_before_bubblewrap_is_probed(tmp_path: Path) -> None:
    # the unit tier refuses subprocesses: probing bubblewrap first would fail differently
    with pytest.raises(ConfigurationError, match="sandbox must be 'auto', 'bwrap' or 'none'"):
        default_tools(tmp_path, sandbox="docker")  # type: ignore[arg-type]
