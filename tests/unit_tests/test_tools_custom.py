"""as_tool, approval metadata, and langchain-tests' ToolsUnitTests on every tool."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseTool, ToolException, tool
from langchain_tests.unit_tests import ToolsUnitTests

from streamagent.errors import ConfigurationError
from streamagent.tools import APPROVAL_METADATA_KEY, as_tool, default_tools

SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "minimum": 0}},
    "required": ["a", "b"],
}


def dict_tool(handler: Any, name: str = "add") -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": "Add two integers.", "parameters": SCHEMA},
        "handler": handler,
    }


def test_dict_form_sync_handler_gets_keyword_arguments():
    t = as_tool(dict_tool(lambda a, b: a + b))
    assert t.name == "add"
    assert t.invoke({"a": 2, "b": 3}) == "5"


async def test_dict_form_async_handler():
    async def add(a: int, b: int) -> dict[str, int]:
        await asyncio.sleep(0)
        return {"sum": a + b}

    t = as_tool(dict_tool(add))
    assert await t.ainvoke({"a": 2, "b": 3}) == '{"sum": 5}'


def test_dict_form_single_argument_handler_gets_one_dict():
    seen: list[dict[str, Any]] = []
    t = as_tool(dict_tool(lambda args: seen.append(args) or "ok"))
    assert t.invoke({"a": 1, "b": 2}) == "ok"
    assert seen == [{"a": 1, "b": 2}]


def test_dict_form_validates_before_handler_runs():
    calls: list[Any] = []
    t = as_tool(dict_tool(lambda a, b: calls.append((a, b))))
    with pytest.raises(ToolException, match=r"b: -1 is less than the minimum of 0"):
        t.invoke({"a": 1, "b": -1})
    with pytest.raises(ToolException, match=r"'b' is a required property"):
        t.invoke({"a": 1})
    with pytest.raises(ToolException, match=r"a: 'x' is not of type 'integer'"):
        t.invoke({"a": "x", "b": 1})
    assert calls == []


async def test_dict_form_async_validation_failure():
    async def handler(a: int, b: int) -> int:
        raise AssertionError("must not run")

    with pytest.raises(ToolException, match="invalid arguments"):
        await as_tool(dict_tool(handler)).ainvoke({"a": "no", "b": 1})


def test_dict_form_rejects_bad_definitions():
    with pytest.raises(ConfigurationError, match="invalid JSON schema"):
        as_tool(
            {
                "type": "function",
                "function": {"name": "x", "parameters": {"type": 5}},
                "handler": print,
            }
        )
    with pytest.raises(ConfigurationError, match="handler"):
        as_tool({"type": "function", "function": {"name": "x"}})
    with pytest.raises(ConfigurationError, match="function.name"):
        as_tool({"type": "function", "function": {}, "handler": print})


def test_functions_and_tools_become_tools():
    def multiply(a: int, b: int) -> int:
        """Multiply two integers."""
        return a * b

    async def shout(text: str) -> str:
        """Upper-case text."""
        return text.upper()

    @tool
    def echo(text: str) -> str:
        """Echo text."""
        return text

    assert as_tool(echo) is echo
    assert as_tool(multiply).invoke({"a": 3, "b": 4}) == 12
    assert asyncio.run(as_tool(shout).ainvoke({"text": "hi"})) == "HI"
    with pytest.raises(ConfigurationError):
        as_tool(42)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- approval
def test_require_approval_sets_metadata(tmp_path: Path):
    tools = {
        t.name: t
        for t in default_tools(
            tmp_path,
            sandbox="none",
            require_approval=["write_file", "git_operation:commit", "git_operation:stash"],
        )
    }
    assert list(tools) == ["read_file", "write_file", "execute_bash", "git_operation"]
    assert tools["write_file"].metadata[APPROVAL_METADATA_KEY] is True
    assert tools["git_operation"].metadata[APPROVAL_METADATA_KEY] == frozenset({"commit", "stash"})
    assert APPROVAL_METADATA_KEY not in (tools["read_file"].metadata or {})
    # sandbox="none" explicitly chosen and no approval: an explicit opt-out
    assert APPROVAL_METADATA_KEY not in (tools["execute_bash"].metadata or {})


@pytest.mark.parametrize("entry", ["write-file", "git_operation:frobnicate", "read_file:commit"])
def test_require_approval_typos_are_configuration_errors(tmp_path: Path, entry: str):
    with pytest.raises(ConfigurationError):
        default_tools(tmp_path, sandbox="none", require_approval=[entry])


def test_invalid_limits_refused(tmp_path: Path):
    # (an unknown sandbox mode: tests/integration_tests/test_tools_bash.py, where the probe for
    # bubblewrap that default_tools runs first may start a process)
    with pytest.raises(ConfigurationError, match="bash_timeout_seconds"):
        default_tools(tmp_path, sandbox="none", bash_timeout_seconds=0)


# ----------------------------------------------------------------------------- standard tests
def _tools(tmp: str) -> dict[str, BaseTool]:
    return {t.name: t for t in default_tools(tmp, sandbox="none")}


class TestReadFileStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tools("/tmp")["read_file"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "example.txt", "offset": 0, "limit": 10}


class TestWriteFileStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tools("/tmp")["write_file"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"path": "example.txt", "content": "hello", "mode": "overwrite"}


class TestBashStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tools("/tmp")["execute_bash"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"command": "echo hello", "timeout_seconds": 5}


class TestGitStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return _tools("/tmp")["git_operation"]

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"operation": "log", "max_count": 5}


class TestDictToolStandard(ToolsUnitTests):
    @property
    def tool_constructor(self) -> BaseTool:
        return as_tool(dict_tool(lambda a, b: a + b))

    @property
    def tool_invoke_params_example(self) -> dict[str, Any]:
        return {"a": 1, "b": 2}
