"""The TypeScript "OpenAI Streaming Service" API, as a thin facade over the graph.

``OpenAIService.stream_completion`` / ``complete_with_tools`` / ``register_tool`` and
``ConversationManager`` keep their names; see docs/migration.md.

Example:
    >>> from streamagent.compat import OpenAIService
    >>> OpenAIService.__name__
    'OpenAIService'
"""

from streamagent.compat.service import CompletionResult, OpenAIService
from streamagent.memory.conversation import ConversationManager

__all__ = ["CompletionResult", "ConversationManager", "OpenAIService"]
