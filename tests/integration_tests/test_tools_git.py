"""git_operation against real git repositories, in real bubblewrap and unsandboxed."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, ToolException

from streamagent.tools import as_tool, default_tools, sandbox_available


def _load_tools_integration_tests() -> type:
    # ``langchain_tests.integration_tests/__init__`` also imports the chat-model suites, whose
    # ``@pytest.mark.vcr`` fails our --strict-markers (pytest-recording is disabled). Load the
    # tools suite module on its own.
    import importlib.util

    import langchain_tests

    path = Path(langchain_tests.__file__).parent / "integration_tests" / "tools.py"
    spec = importlib.util.spec_from_file_location("_langchain_tests_tools_integration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ToolsIntegrationTests


ToolsIntegrationTests = _load_tools_integration_tests()

pytestmark = pytest.mark.sandbox


@pytest.fixture(params=["bwrap", "none"])
def mode(request) -> str:
    if request.param == "bwrap" and not sandbox_available():
        pytest.fail(
            "bubblewrap (bwrap) is missing or cannot create a sandbox: apt-get install "
            "bubblewrap, or deselect with -m 'not sandbox'"
        )
    return request.param


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


def git_tool(ws: Path, mode: str, **kw) -> BaseTool:
    return default_tools(
        ws, sandbox=mode, git_author_name="Ada", git_author_email="ada@example.org", **kw
    )[3]


def plain_git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(repo), "GIT_CONFIG_NOSYSTEM": "1"},
    ).stdout


@pytest.fixture
def repo(ws: Path, mode: str) -> tuple[BaseTool, Path]:
    g = git_tool(ws, mode)
    g.invoke({"operation": "init"})
    (ws / "a.txt").write_text("one\n")
    g.invoke({"operation": "add", "paths": ["a.txt"]})
    g.invoke({"operation": "commit", "message": "first"})
    return g, ws


def test_commit_uses_configured_author_and_log_shows_it(repo):
    g, ws = repo
    assert (
        plain_git(ws, "log", "-1", "--format=%an <%ae>|%cn|%s")
        == "Ada <ada@example.org>|Ada|first\n"
    )
    assert "Ada" in g.invoke({"operation": "log"}) and "first" in g.invoke({"operation": "log"})


def test_everyday_operations(repo):
    g, ws = repo
    (ws / "a.txt").write_text("two\n")
    assert "+two" in g.invoke({"operation": "diff"})
    assert "M a.txt" in g.invoke({"operation": "status"})
    g.invoke({"operation": "stash", "stash_action": "push", "message": "wip"})
    assert (ws / "a.txt").read_text() == "one\n"
    assert "wip" in g.invoke({"operation": "stash", "stash_action": "list"})
    g.invoke({"operation": "stash", "stash_action": "pop"})
    assert (ws / "a.txt").read_text() == "two\n"
    g.invoke({"operation": "restore", "paths": ["a.txt"]})
    assert (ws / "a.txt").read_text() == "one\n"
    g.invoke({"operation": "switch", "branch": "feature", "create": True})
    assert "* feature" in g.invoke({"operation": "branch"})
    assert len(g.invoke({"operation": "rev_parse", "ref": "HEAD"})) == 40
    assert "one" in g.invoke({"operation": "blame", "paths": ["a.txt"]})
    assert "first" in g.invoke({"operation": "show", "ref": "HEAD"})


@pytest.mark.parametrize(
    "args",
    [
        {"operation": "diff", "ref": "--output=OUT"},
        {"operation": "log", "ref": "--output=OUT"},
        {"operation": "show", "ref": "-oOUT"},
        {"operation": "add", "paths": ["--output=OUT"]},
        {"operation": "diff", "paths": ["--output=OUT"]},
        {"operation": "switch", "branch": "--orphan=OUT"},
        {"operation": "branch", "branch": "-D"},
        {"operation": "rev_parse", "ref": "--git-dir"},
    ],
)
def test_option_injection_refused_and_no_file_created(repo, args, tmp_path):
    g, ws = repo
    out = tmp_path / "injected"
    args = {
        k: (
            v.replace("OUT", str(out))
            if isinstance(v, str)
            else [p.replace("OUT", str(out)) for p in v]
        )
        for k, v in args.items()
    }
    with pytest.raises(ToolException, match="refused"):
        g.invoke(args)
    assert not out.exists()


@pytest.mark.parametrize(
    "ref", ["main;rm -rf /", "a b", "HEAD:../../etc/passwd", ":/secret", "x..y/"]
)
def test_odd_refs_refused(repo, ref):
    g, _ = repo
    with pytest.raises(ToolException, match="refused"):
        g.invoke({"operation": "log", "ref": ref})


def test_paths_outside_workspace_refused(repo):
    g, _ = repo
    with pytest.raises(ToolException, match="outside the workspace"):
        g.invoke({"operation": "add", "paths": ["../outside.txt"]})


def test_hooks_are_not_run(repo, tmp_path):
    g, ws = repo
    marker = tmp_path / "hook-ran"
    for hook in ("pre-commit", "post-commit", "commit-msg", "post-checkout"):
        h = ws / ".git" / "hooks" / hook
        h.parent.mkdir(exist_ok=True)
        h.write_text(f"#!/bin/sh\ntouch {marker}\n")
        h.chmod(0o755)
    # a hooksPath planted in the repo config is overridden as well
    plain_git(ws, "config", "core.hooksPath", str(ws / ".git" / "hooks"))
    (ws / "a.txt").write_text("changed\n")
    g.invoke({"operation": "add", "paths": ["a.txt"]})
    g.invoke({"operation": "commit", "message": "second"})
    g.invoke({"operation": "switch", "branch": "x", "create": True})
    assert not marker.exists()
    assert "second" in plain_git(ws, "log", "-1", "--format=%s")


def test_external_diff_textconv_filters_and_fsmonitor_not_run(repo, tmp_path):
    g, ws = repo
    marker = tmp_path / "ran"
    script = tmp_path / "evil.sh"
    script.write_text(f"#!/bin/sh\necho pwned >> {marker}\ncat\n")
    script.chmod(0o755)
    for key, value in [
        ("diff.external", str(script)),
        ("diff.evil.textconv", str(script)),
        ("diff.evil.command", str(script)),
        ("filter.evil.clean", str(script)),
        ("filter.evil.smudge", str(script)),
        ("filter.evil.required", "true"),
        ("core.fsmonitor", str(script)),
        ("core.pager", str(script)),
        ("log.showSignature", "true"),
        ("gpg.program", str(script)),
    ]:
        plain_git(ws, "config", key, value)
    (ws / ".gitattributes").write_text("*.txt diff=evil filter=evil\n")
    (ws / "a.txt").write_text("changed\n")
    g.invoke({"operation": "status"})
    assert "+changed" in g.invoke({"operation": "diff"})
    g.invoke({"operation": "add", "paths": ["a.txt", ".gitattributes"]})
    g.invoke({"operation": "commit", "message": "with attrs"})
    g.invoke({"operation": "show"})
    g.invoke({"operation": "log"})
    g.invoke({"operation": "blame", "paths": ["a.txt"]})
    (ws / "a.txt").unlink()
    g.invoke({"operation": "restore", "paths": ["a.txt"]})
    assert not marker.exists()


def test_repository_outside_workspace_refused(tmp_path, mode):
    # The workspace is a subdirectory of a repository: git must not discover the parent repo.
    outer = tmp_path / "outer"
    ws = outer / "ws"
    ws.mkdir(parents=True)
    plain_git(outer, "init", "-q")
    g = git_tool(ws, mode)
    with pytest.raises(ToolException, match="no git work tree"):
        g.invoke({"operation": "status"})
    with pytest.raises(ToolException, match="outside the workspace"):
        g.invoke({"operation": "status", "repo": "../"})


def test_gitfile_pointing_outside_is_refused(tmp_path, mode):
    ws = tmp_path / "ws"
    ws.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    plain_git(elsewhere, "init", "-q")
    (ws / ".git").write_text(f"gitdir: {elsewhere / '.git'}\n")
    g = git_tool(ws, mode)
    with pytest.raises(ToolException):
        g.invoke({"operation": "status"})


@pytest.mark.parametrize("op", ["fetch", "pull", "push", "clone"])
def test_network_operations_refused_by_default(repo, op):
    g, _ = repo
    with pytest.raises(ToolException, match="needs the network"):
        g.invoke({"operation": op, "url": "https://example.org/x.git", "paths": ["x"]})


def test_failed_operation_is_a_tool_exception_with_git_message(repo):
    g, _ = repo
    with pytest.raises(ToolException, match="nothing to commit"):
        g.invoke({"operation": "commit", "message": "empty"})


def test_repository_in_a_subdirectory(ws, mode):
    g = git_tool(ws, mode)
    (ws / "sub").mkdir()
    g.invoke({"operation": "init", "repo": "sub"})
    (ws / "sub" / "f.txt").write_text("f\n")
    g.invoke({"operation": "add", "repo": "sub", "paths": ["f.txt"]})
    assert "A  f.txt" in g.invoke({"operation": "status", "repo": "sub"})
    assert (ws / "sub" / ".git").is_dir() and not (ws / ".git").exists()


async def test_async_operations(repo):
    g, ws = repo
    (ws / "b.txt").write_text("b\n")
    await g.ainvoke({"operation": "add", "paths": ["b.txt"]})
    assert "A  b.txt" in await g.ainvoke({"operation": "status"})


# ----------------------------------------------------------------------------- standard tests
_STD_WS: dict[str, Path] = {}


def _std_ws() -> Path:
    if "ws" not in _STD_WS:
        import tempfile

        ws = Path(tempfile.mkdtemp(prefix="streamagent-std-"))
        (ws / "example.txt").write_text("hello\n")
        plain_git(ws, "init", "-q")
        _STD_WS["ws"] = ws
    return _STD_WS["ws"]


def _std(name: str) -> BaseTool:
    return {t.name: t for t in default_tools(_std_ws(), sandbox="auto")}[name]


class TestReadFileIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _std("read_file")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "example.txt"}


class TestWriteFileIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _std("write_file")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "out/example.txt", "content": "hello"}


class TestBashIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _std("execute_bash")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"command": "echo hello"}


class TestGitIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _std("git_operation")

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"operation": "status"}


class TestDictToolIntegration(ToolsIntegrationTests):
    @property
    def tool_constructor(self) -> BaseTool:
        async def handler(text: str) -> str:
            return text.upper()

        return as_tool(
            {
                "type": "function",
                "function": {
                    "name": "upper",
                    "description": "Upper-case text.",
                    "parameters": {
                        "type": "object",
                        "properties": {"text": {"type": "string"}},
                        "required": ["text"],
                    },
                },
                "handler": handler,
            }
        )

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"text": "hi"}
