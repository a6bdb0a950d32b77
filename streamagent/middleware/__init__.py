"""LangChain v1 ``AgentMiddleware`` inside streamagent's graph.

``create_agent_graph(..., middleware=[...])`` and ``build_agent(..., middleware=[...])`` run
every hook with ``create_agent``'s semantics: ``before_agent`` / ``before_model`` /
``after_model`` / ``after_agent`` as graph nodes (``jump_to`` honoured), ``wrap_model_call``
around the model node's streamed call, ``wrap_tool_call`` around each call of the tool router,
``dynamic_prompt``, middleware ``state_schema`` merged into the state and middleware ``tools``
added to the agent's. Without middleware the graph is exactly the one without this package.

It needs the ``middleware`` extra (``pip install 'streamagent[middleware]'``, which installs
``langchain``); without it ``middleware=`` raises :class:`~streamagent.errors.MissingExtraError`.
Nothing here imports ``langchain`` at import time. The policy for middleware that overlap
streamagent's own features (retries, pruning, approval, limits) is in ``docs/middleware.md``.
"""

from __future__ import annotations

from streamagent.middleware._stack import (
    MIDDLEWARE_EXTRA,
    MiddlewareStack,
    recursion_limit,
    require_langchain,
)

__all__ = ["MIDDLEWARE_EXTRA", "MiddlewareStack", "recursion_limit", "require_langchain"]
