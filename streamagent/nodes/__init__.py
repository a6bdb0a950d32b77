"""The agent's nodes, one concern each: prune, model, tools (the router)."""

from streamagent.nodes.model import ModelNode
from streamagent.nodes.prune import PruneNode
from streamagent.nodes.tools import ToolRouter

__all__ = ["ModelNode", "PruneNode", "ToolRouter"]
