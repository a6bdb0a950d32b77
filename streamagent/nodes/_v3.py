"""LangGraph's v3 typed stream (``astream_events(version="v3")``, experimental in 1.2).

Under v3, LangGraph attaches a messages handler that ignores LangChain's v1 token callbacks
(``on_llm_new_token``, which ``chat_model.astream()`` fires) and listens to the chat model's
*protocol* events instead (``on_stream_event``: ``message-start``, ``content-block-delta`` …),
which LangChain fires when the model is *invoked* with such a handler attached. The model node
therefore invokes the model on v3 runs (:func:`protocol_streaming`), so ``run.messages`` carries
the agent's text deltas, tool calls and usage; other runs keep the chunk-level ``astream`` path.

The handler's marker class is a private name of ``langchain_core``; when it is missing this
module reports "not a v3 run" and the v1 path is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import BaseCallbackManager

_V2Handler: type[Any] | None
try:  # private in langchain-core; guarded (absent → the v1 path)
    from langchain_core.tracers._streaming import _V2StreamingCallbackHandler
except ImportError:  # pragma: no cover - older or newer langchain-core
    _V2Handler = None
else:
    _V2Handler = _V2StreamingCallbackHandler

__all__ = ["protocol_streaming"]


def protocol_streaming(config: Mapping[str, Any]) -> bool:
    """True when the run streams LangChain's protocol events (a v3 run)."""
    if _V2Handler is None:
        return False
    callbacks = config.get("callbacks")
    if isinstance(callbacks, BaseCallbackManager):
        handlers = callbacks.handlers
    elif isinstance(callbacks, list):
        handlers = callbacks
    else:
        return False
    return any(isinstance(h, _V2Handler) for h in handlers)
