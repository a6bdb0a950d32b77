"""The graph LangGraph Server / ``langgraph dev`` / Studio serve (see ``langgraph.json``).

LangGraph Server brings its own persistence, so this module-level ``graph`` is compiled
*without* a checkpointer (the server refuses graphs that have one). The model is configured
by environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``STREAMAGENT_MODEL``) and, per run,
by the run's ``configurable``: ``model``, ``base_url``, ``temperature``, ``max_tokens``.
The tools work in ``STREAMAGENT_WORKSPACE`` (default: the current directory).

To keep the server's threads in streamagent's Redis saver instead of the platform's own
persistence, point ``langgraph.json`` at :func:`redis_checkpointer`::

    "checkpointer": {"path": "./streamagent/graphs/server.py:redis_checkpointer"}

Importing this module does no network I/O (the model client is built at the first run).

Example:
    >>> from streamagent.graphs.server import graph
    >>> graph.name, graph.checkpointer is None
    ('streamagent', True)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from streamagent.config import AgentConfig, ModelConfig
from streamagent.graphs.agent import create_agent_graph
from streamagent.memory import AsyncRedisSaver, default_redis_url
from streamagent.tools import default_tools

__all__ = ["graph", "redis_checkpointer"]

#: Name of the served graph (and of its agent in streams and traces).
AGENT_NAME = "streamagent"


def _make_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    model = ModelConfig(model=os.environ.get("STREAMAGENT_MODEL") or "gpt-4o")
    workspace = Path(os.environ.get("STREAMAGENT_WORKSPACE") or Path.cwd()).resolve()
    tools = default_tools(workspace)
    builder = create_agent_graph(tools=tools, config=AgentConfig(model=model), name=AGENT_NAME)
    return builder.compile(name=AGENT_NAME)


@asynccontextmanager
async def redis_checkpointer() -> AsyncIterator[AsyncRedisSaver]:
    """streamagent's :class:`~streamagent.memory.AsyncRedisSaver` for LangGraph Server.

    The target of ``langgraph.json``'s ``"checkpointer": {"path": ...}``: the server enters it
    once per event loop and uses the saver for every thread. Redis is ``REDIS_URL`` (else an
    embedded server); keys live under ``STREAMAGENT_KEY_PREFIX`` (default ``streamagent``).
    """
    url = await asyncio.to_thread(default_redis_url)
    prefix = os.environ.get("STREAMAGENT_KEY_PREFIX") or "streamagent"
    async with AsyncRedisSaver.from_url(url, key_prefix=prefix) as saver:
        await saver.asetup()
        yield saver


graph = _make_graph()
