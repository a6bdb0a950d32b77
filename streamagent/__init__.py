"""streamagent: a streaming OpenAI agent as a first-class LangGraph citizen.

The top level holds what a user needs to build, compose and stream an agent; everything else
lives in its subpackage (:mod:`streamagent.accounting`, :mod:`streamagent.observability`,
:mod:`streamagent.memory`, :mod:`streamagent.tools`, :mod:`streamagent.compat`, ...).

Example:
    >>> import streamagent
    >>> "build_agent" in streamagent.__all__
    True
"""

from __future__ import annotations

import warnings
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers; test_public_api.py keeps it equal to _EXPORTS
    from streamagent.config import AgentConfig as AgentConfig
    from streamagent.config import ModelConfig as ModelConfig
    from streamagent.config import PruningConfig as PruningConfig
    from streamagent.config import RetryConfig as RetryConfig
    from streamagent.errors import AgentRunError as AgentRunError
    from streamagent.errors import StreamAgentError as StreamAgentError
    from streamagent.errors import UserError as UserError
    from streamagent.graphs.agent import build_agent as build_agent
    from streamagent.graphs.agent import create_agent_graph as create_agent_graph
    from streamagent.memory.config import MemoryConfig as MemoryConfig
    from streamagent.state import AgentState as AgentState
    from streamagent.streaming.chunk import StreamChunk as StreamChunk
    from streamagent.streaming.run import astream_chunks as astream_chunks
    from streamagent.streaming.run import stream_chunks as stream_chunks

# The one list of public names: name -> the module that defines it. Names resolve lazily
# (PEP 562): ``import streamagent`` stays cheap and does no I/O.
_EXPORTS: dict[str, str] = {
    # build and compose
    "build_agent": "streamagent.graphs.agent",
    "create_agent_graph": "streamagent.graphs.agent",
    # stream
    "astream_chunks": "streamagent.streaming.run",
    "stream_chunks": "streamagent.streaming.run",
    "StreamChunk": "streamagent.streaming.chunk",
    # state and configuration
    "AgentState": "streamagent.state",
    "AgentConfig": "streamagent.config",
    "ModelConfig": "streamagent.config",
    "PruningConfig": "streamagent.config",
    "RetryConfig": "streamagent.config",
    "MemoryConfig": "streamagent.memory.config",
    # the roots of the error hierarchy
    "StreamAgentError": "streamagent.errors",
    "UserError": "streamagent.errors",
    "AgentRunError": "streamagent.errors",
}

# Names that left the top level in 0.2 (CHANGELOG.md): they still resolve, with a
# DeprecationWarning that names their home, and are not in ``__all__``.
_MOVED: dict[str, str] = {
    "ModelPrice": "streamagent.config",
    "create_openai_config": "streamagent.config",
    "CostCalculator": "streamagent.accounting",
    "Usage": "streamagent.accounting",
    "calculate_cost": "streamagent.accounting",
    "PruneResult": "streamagent.accounting",
    "prune_messages": "streamagent.accounting",
    "shrink_text": "streamagent.accounting",
    "TokenCounter": "streamagent.accounting",
    "count_tokens": "streamagent.accounting",
    "count_message_tokens": "streamagent.accounting",
    "get_token_counter": "streamagent.accounting",
    "AgentMetrics": "streamagent.observability",
    "tune_gc": "streamagent.observability",
    "restore_gc": "streamagent.observability",
    "RedisSaver": "streamagent.memory",
    "AsyncRedisSaver": "streamagent.memory",
    "ConversationManager": "streamagent.memory",
    "OpenAIService": "streamagent.compat",
    "CompletionResult": "streamagent.compat",
    "as_tool": "streamagent.tools",
    "default_tools": "streamagent.tools",
}

__all__ = sorted(_EXPORTS)  # noqa: PLE0605 - derived from the one table
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(import_module(module), name)
        globals()[name] = value
        return value
    home = _MOVED.get(name)
    if home is not None:
        warnings.warn(
            f"streamagent.{name} moved: import it from {home} (from {home} import {name})",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(import_module(home), name)
    raise AttributeError(f"module 'streamagent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
