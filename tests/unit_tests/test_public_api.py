"""The public API is a promise: pin the exported names."""

from __future__ import annotations

import importlib

import streamagent

EXPECTED_TOP_LEVEL = {
    "AgentConfig",
    "AgentRunError",
    "AgentState",
    "AsyncRedisSaver",
    "CompletionResult",
    "ConversationManager",
    "CostCalculator",
    "MemoryConfig",
    "ModelConfig",
    "ModelPrice",
    "OpenAIService",
    "PruningConfig",
    "RedisSaver",
    "RetryConfig",
    "StreamAgentError",
    "StreamChunk",
    "Usage",
    "UserError",
    "as_tool",
    "astream_chunks",
    "build_agent",
    "calculate_cost",
    "count_message_tokens",
    "count_tokens",
    "create_agent_graph",
    "create_openai_config",
    "default_tools",
    "stream_chunks",
    "AgentMetrics",
    "PruneResult",
    "TokenCounter",
    "get_token_counter",
    "prune_messages",
    "shrink_text",
    "tune_gc",
    "restore_gc",
}


def test_top_level_all_is_pinned():
    assert set(streamagent.__all__) == EXPECTED_TOP_LEVEL


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
        "streamagent.streaming",
        "streamagent.retry",
        "streamagent.state",
        "streamagent.service",
        "streamagent.graphs",
        "streamagent.nodes",
        "streamagent.tokens",
        "streamagent.cost",
        "streamagent.pruning",
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
