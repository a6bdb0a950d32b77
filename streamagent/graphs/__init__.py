"""Graph factories: ``create_agent_graph`` (uncompiled) and ``build_agent`` (compiled)."""

from streamagent.graphs.agent import (
    build_agent,
    create_agent_graph,
    default_saver,
    route_after_model,
)

__all__ = ["build_agent", "create_agent_graph", "default_saver", "route_after_model"]
