"""LangGraph's v3 typed stream (``astream_events(version="v3")``, experimental in 1.2).

Under v3, LangGraph attaches a messages handler that ignores LangChain's v1 token callbacks
(``on_llm_new_token``, which ``chat_model.astream()`` fires) and listens to the chat model's
*protocol* events instead (``on_stream_event``: ``message-start``, ``content-block-delta`` …),
which LangChain fires when the model is *invoked* with such a handler attached. The model node
therefore invokes the model on v3 runs (:func:`protocol_streaming`), so ``run.messages`` carries
the agent's text deltas, tool calls and usage; other runs keep the chunk-level ``astream`` path.

The handler's marker class is a private name of ``langchain_core``, resolved guarded in
:mod:`streamagent._upstream.langchain_core_private`: when it is missing, no run is a v3 run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamagent._upstream.langchain_core_private import wants_protocol_events

__all__ = ["protocol_streaming"]


def protocol_streaming(config: Mapping[str, Any]) -> bool:
    """True when the run streams LangChain's protocol events (a v3 run)."""
    return wants_protocol_events(config.get("callbacks"))
