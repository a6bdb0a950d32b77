"""The stream protocol between streamagent's nodes and its stream reader.

Nodes *write* these; :class:`~streamagent.streaming.translate.ChunkTranslator` *reads* them.
Both sides import the names from here, so the protocol has one spelling:

- ``custom`` stream events carry ``{EVENT_KEY: <event>, "agent": <name>, ...}`` with
  ``<event>`` one of :data:`TOOL_RESULT_EVENT` (a tool call finished) and :data:`RETRY_EVENT`
  (a model call is retried: discard its partial output);
- the agent's model calls are tagged with ``{AGENT_METADATA_KEY: <agent name>}`` in their
  run metadata, so the reader tells the agent's tokens from other models' tokens;
- a run's token sink travels in ``configurable[SINK_KEY]`` (keys starting with ``__`` never
  reach checkpoint metadata or traces).

Example:
    >>> from streamagent.streaming.protocol import EVENT_KEY, RETRY_EVENT
    >>> {EVENT_KEY: RETRY_EVENT}
    {'streamagent': 'retry'}
"""

from __future__ import annotations

__all__ = [
    "AGENT_METADATA_KEY",
    "EVENT_KEY",
    "RETRY_EVENT",
    "SINK_KEY",
    "STREAM_MODES",
    "TOOL_RESULT_EVENT",
]

#: the key of a ``custom`` stream event that names the streamagent event
EVENT_KEY = "streamagent"
#: a model call is retried (``{"streamagent": "retry", "agent", "attempt", ...}``)
RETRY_EVENT = "retry"
#: a tool call finished (``{"streamagent": "tool_result", "tool_call_id", "name", ...}``)
TOOL_RESULT_EVENT = "tool_result"
#: run-metadata key naming the streamagent agent whose model produced a token
AGENT_METADATA_KEY = "streamagent_agent"
#: ``configurable`` key of a run's token sink (:mod:`streamagent.streaming.sink`)
SINK_KEY = "__streamagent_token_sink"
#: the stream modes the reader asks LangGraph for
STREAM_MODES: tuple[str, ...] = ("messages", "updates", "custom")
