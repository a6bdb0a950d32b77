"""streamagent: a streaming OpenAI agent as a first-class LangGraph citizen.

Example:
    >>> import streamagent
    >>> "create_agent_graph" in streamagent.__all__
    True
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamagent.config import (
        AgentConfig,
        ModelConfig,
        ModelPrice,
        PruningConfig,
        RetryConfig,
        create_openai_config,
    )
    from streamagent.cost import CostCalculator, Usage, calculate_cost
    from streamagent.errors import AgentRunError, StreamAgentError, UserError
    from streamagent.gctune import restore_gc, tune_gc
    from streamagent.graphs.agent import build_agent, create_agent_graph
    from streamagent.memory import (
        AsyncRedisSaver,
        ConversationManager,
        MemoryConfig,
        RedisSaver,
    )
    from streamagent.metrics import AgentMetrics
    from streamagent.pruning import PruneResult, prune_messages, shrink_text
    from streamagent.service import CompletionResult, OpenAIService
    from streamagent.state import AgentState
    from streamagent.streaming import StreamChunk, astream_chunks, stream_chunks
    from streamagent.tokens import (
        TokenCounter,
        count_message_tokens,
        count_tokens,
        get_token_counter,
    )
    from streamagent.tools import as_tool, default_tools

# Public names resolve lazily (PEP 562): ``import streamagent`` stays cheap and never does I/O.
_EXPORTS: dict[str, str] = {
    "AgentConfig": "streamagent.config",
    "ModelConfig": "streamagent.config",
    "ModelPrice": "streamagent.config",
    "PruningConfig": "streamagent.config",
    "RetryConfig": "streamagent.config",
    "create_openai_config": "streamagent.config",
    "CostCalculator": "streamagent.cost",
    "Usage": "streamagent.cost",
    "calculate_cost": "streamagent.cost",
    "AgentRunError": "streamagent.errors",
    "StreamAgentError": "streamagent.errors",
    "UserError": "streamagent.errors",
    "build_agent": "streamagent.graphs.agent",
    "create_agent_graph": "streamagent.graphs.agent",
    "AsyncRedisSaver": "streamagent.memory",
    "ConversationManager": "streamagent.memory",
    "MemoryConfig": "streamagent.memory",
    "RedisSaver": "streamagent.memory",
    "CompletionResult": "streamagent.service",
    "OpenAIService": "streamagent.service",
    "AgentState": "streamagent.state",
    "StreamChunk": "streamagent.streaming",
    "astream_chunks": "streamagent.streaming",
    "stream_chunks": "streamagent.streaming",
    "count_message_tokens": "streamagent.tokens",
    "count_tokens": "streamagent.tokens",
    "as_tool": "streamagent.tools",
    "default_tools": "streamagent.tools",
    "TokenCounter": "streamagent.tokens",
    "get_token_counter": "streamagent.tokens",
    "PruneResult": "streamagent.pruning",
    "prune_messages": "streamagent.pruning",
    "shrink_text": "streamagent.pruning",
    "AgentMetrics": "streamagent.metrics",
    "restore_gc": "streamagent.gctune",
    "tune_gc": "streamagent.gctune",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streamagent' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AgentConfig",
    "AgentMetrics",
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
    "PruneResult",
    "PruningConfig",
    "RedisSaver",
    "RetryConfig",
    "StreamAgentError",
    "StreamChunk",
    "TokenCounter",
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
    "get_token_counter",
    "prune_messages",
    "restore_gc",
    "shrink_text",
    "stream_chunks",
    "tune_gc",
]
__version__ = "0.1.0"
