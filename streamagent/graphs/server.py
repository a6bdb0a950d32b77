"""The graph LangGraph Server / ``langgraph dev`` / Studio serve (see ``langgraph.json``).

LangGraph Server brings its own persistence, so this module-level ``graph`` is compiled
*without* a checkpointer (the server refuses graphs that have one). The model is configured
by environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``STREAMAGENT_MODEL``) and, per run,
by the run's ``configurable``: ``model``, ``base_url``, ``temperature``, ``max_tokens``.
The tools work in ``STREAMAGENT_WORKSPACE`` (default: the current directory).

Example:
    >>> from streamagent.graphs.server import graph
    >>> graph.name, graph.checkpointer is None
    ('streamagent', True)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from streamagent.config import AgentConfig, ModelConfig
from streamagent.graphs.agent import create_agent_graph
from streamagent.tools import default_tools

__all__ = ["graph"]


def _make_graph() -> CompiledStateGraph[Any, Any, Any, Any]:
    model = ModelConfig(model=os.environ.get("STREAMAGENT_MODEL") or "gpt-4o")
    workspace = Path(os.environ.get("STREAMAGENT_WORKSPACE") or Path.cwd()).resolve()
    tools = default_tools(workspace)
    builder = create_agent_graph(tools=tools, config=AgentConfig(model=model), name="streamagent")
    return builder.compile(name="streamagent")


graph = _make_graph()
