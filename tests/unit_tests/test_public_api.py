"""The public API is a promise: pin the exported names."""

from __future__ import annotations

import ast
import importlib
import inspect

import pytest

import streamagent

EXPECTED_TOP_LEVEL = [
    "AgentConfig",
    "AgentRunError",
    "AgentState",
    "MemoryConfig",
    "ModelConfig",
    "PruningConfig",
    "RetryConfig",
    "StreamAgentError",
    "StreamChunk",
    "UserError",
    "astream_chunks",
    "build_agent",
    "create_agent_graph",
    "stream_chunks",
]


def test_top_level_all_is_pinned():
    assert streamagent.__all__ == EXPECTED_TOP_LEVEL


def test_type_checking_imports_match_the_export_table():
    """The TYPE_CHECKING block (for type checkers) names exactly the lazily exported names,
    each from the module the export table names: the table stays the one source of truth."""
    tree = ast.parse(inspect.getsource(streamagent))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    imported = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == streamagent._EXPORTS


@pytest.mark.parametrize("name", sorted(streamagent._MOVED))
def test_names_that_left_the_top_level_warn_and_name_their_home(name: str) -> None:
    home = streamagent._MOVED[name]
    with pytest.warns(DeprecationWarning, match=rf"import it from {home}"):
        value = getattr(streamagent, name)
    assert value is getattr(importlib.import_module(home), name)
    assert name not in streamagent.__all__


def test_every_exported_name_resolves():
    for name in streamagent.__all__:
        assert getattr(streamagent, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    try:
        streamagent.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_submodules_declare_all():
    for mod in (
        "streamagent.config",
        "streamagent.errors",
        "streamagent.accounting",
        "streamagent.accounting.encodings",
        "streamagent.observability",
        "streamagent.llm",
        "streamagent.llm.lean",
        "streamagent.compat",
        "streamagent.streaming.protocol",
        "streamagent.streaming",
        "streamagent.llm.retry",
        "streamagent.state",
        "streamagent.compat.service",
        "streamagent.graphs",
        "streamagent.nodes",
        "streamagent.accounting.tokens",
        "streamagent.accounting.cost",
        "streamagent.accounting.pruning",
        "streamagent.testing",
        "streamagent.tools",
        "streamagent.memory",
        "streamagent.middleware",
    ):
        module = importlib.import_module(mod)
        exported = getattr(module, "__all__", None)
        assert exported, f"{mod} has no __all__"
        for name in exported:
            assert hasattr(module, name), f"{mod}.__all__ names missing {name}"
