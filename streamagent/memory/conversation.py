"""``ConversationManager``: the TypeScript service's memory API as a view over a saver thread.

A session is a LangGraph thread (``thread_id = session_id``) in the same checkpointer the agent
uses, so there is one source of truth: messages added here are what the agent sees on its next
run, and what the agent said is what :meth:`ConversationManager.get_conversation` returns.
Writes go through LangGraph's own machinery (``update_state`` on a graph of the agent's shape,
``as_node="model"``), so the thread's next run starts normally at ``START -> prune``.
``max_messages`` / ``max_tokens`` are enforced on each write with
:func:`streamagent.accounting.pruning.prune_messages`; dropped messages leave the state through
``RemoveMessage``.

Sync variants are ``add_message_sync``, ``get_conversation_sync`` and ``clear_sync``.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> manager = ConversationManager(MemoryConfig(max_messages=2), saver=InMemorySaver())
    >>> for text in ("one", "two", "three"):
    ...     manager.add_message_sync("s1", {"role": "user", "content": text})
    >>> [m.content for m in manager.get_conversation_sync("s1")]
    ['two', 'three']
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import BaseMessage, RemoveMessage, convert_to_messages
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from streamagent.accounting.pruning import prune_messages
from streamagent.accounting.tokens import get_token_counter
from streamagent.errors import ContextTooLongError, InvalidInputError
from streamagent.memory.config import MemoryConfig
from streamagent.state import AgentState

__all__ = ["ConversationManager", "MessageInput"]

MessageInput = BaseMessage | Mapping[str, Any]
WRITER_NODE = "model"


def _passthrough(state: AgentState) -> dict[str, Any]:
    return {}


def _view_graph(saver: BaseCheckpointSaver[Any]) -> CompiledStateGraph[Any, Any, Any, Any]:
    """A graph with the agent's node names; never run, only used for get/update_state."""
    builder: StateGraph[AgentState, Any, AgentState, AgentState] = StateGraph(AgentState)
    for name in ("prune", "model", "tools"):
        builder.add_node(name, _passthrough)
    builder.add_edge(START, "prune")
    builder.add_edge("prune", "model")
    builder.add_edge("model", END)
    builder.add_edge("tools", "prune")
    return builder.compile(checkpointer=saver)


def to_message(message: MessageInput) -> BaseMessage:
    """A LangChain message from a message or an OpenAI-style dict, with an id."""
    if isinstance(message, BaseMessage):
        converted = message
    elif isinstance(message, Mapping):
        if "role" not in message and "type" not in message:
            raise InvalidInputError("a message dict needs a 'role' (user/assistant/system/tool)")
        try:
            converted = convert_to_messages([dict(message)])[0]
        except (ValueError, TypeError, KeyError, NotImplementedError) as exc:
            raise InvalidInputError(f"invalid message {redact_message(message)}: {exc}") from exc
    else:
        raise InvalidInputError(f"a message must be a BaseMessage or a dict, not {type(message)}")
    if converted.id is None:
        converted = converted.model_copy(update={"id": str(uuid.uuid4())})
    return converted


def redact_message(message: Mapping[str, Any]) -> str:
    """Short description of a message dict for error texts (role and content length)."""
    content = message.get("content")
    size = len(content) if isinstance(content, str | list) else 0
    return f"(role={message.get('role')!r}, content of length {size})"


class ConversationManager:
    """Sessions of conversation memory on a checkpointer (Redis by default).

    ``saver``: the checkpointer the agent uses (a :class:`~streamagent.memory.RedisSaver` serves
    both the async and the sync methods). Without one, a ``RedisSaver`` is created on first use
    from ``config`` (``MemoryConfig.url``, host/port...; with no config at all:
    :func:`~streamagent.memory.default_redis_url`, i.e. ``REDIS_URL`` or the embedded server).
    The constructor does no I/O.
    """

    def __init__(
        self,
        config: MemoryConfig | None = None,
        *,
        saver: BaseCheckpointSaver[Any] | None = None,
    ) -> None:
        self._use_default_url = config is None
        self.config = config or MemoryConfig()
        self._saver = saver
        self._graph: CompiledStateGraph[Any, Any, Any, Any] | None = None
        self._init_lock = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = {}

    @property
    def saver(self) -> BaseCheckpointSaver[Any]:
        """The checkpointer (created on first access when none was given)."""
        with self._init_lock:
            if self._saver is None:
                from streamagent.memory.embedded import default_redis_url
                from streamagent.memory.sync import RedisSaver, redis_client

                url = default_redis_url() if self._use_default_url else self.config.redis_url()
                client = redis_client(url)
                saver = RedisSaver(
                    client, key_prefix=self.config.key_prefix, ttl_seconds=self.config.ttl_seconds
                )
                saver.setup()
                self._saver = saver
            return self._saver

    @property
    def graph(self) -> CompiledStateGraph[Any, Any, Any, Any]:
        """The view graph over the saver."""
        saver = self.saver
        with self._init_lock:
            if self._graph is None:
                self._graph = _view_graph(saver)
            return self._graph

    @staticmethod
    def _config(session_id: str) -> RunnableConfig:
        if not session_id:
            raise InvalidInputError("session_id must be a non-empty string")
        return {"configurable": {"thread_id": session_id}}

    def _lock_for(self, session_id: str) -> threading.Lock:
        with self._init_lock:
            return self._session_locks.setdefault(session_id, threading.Lock())

    def _update(
        self, history: list[BaseMessage], message: BaseMessage, model: str | None
    ) -> dict[str, Any]:
        """The state update adding ``message`` and removing what the limits drop."""
        cfg = self.config
        if cfg.max_messages is None and cfg.max_tokens is None:
            return {"messages": [message]}
        counter = get_token_counter(model or cfg.model)
        candidate = [m for m in history if m.id != message.id] + [message]
        try:
            result = prune_messages(
                candidate,
                max_tokens=cfg.max_tokens,
                max_messages=cfg.max_messages,
                count_tokens=counter.message_tokens,
            )
        except ContextTooLongError as exc:
            raise InvalidInputError(
                f"message not stored: the newest turn alone exceeds max_tokens={cfg.max_tokens} "
                f"({exc.message})"
            ) from exc
        removed = {m.id for m in result.removed if m.id is not None}
        updates: list[BaseMessage] = [
            RemoveMessage(id=i) for i in removed if any(h.id == i for h in history)
        ]
        if message.id not in removed:
            updates.append(message)
        return {"messages": updates}

    # ------------------------------------------------------------------ async API
    async def add_message(
        self, session_id: str, message: MessageInput, model: str | None = None
    ) -> None:
        """Append ``message`` to the session, then enforce the limits (one checkpoint)."""
        config = self._config(session_id)
        converted = to_message(message)
        graph = await asyncio.to_thread(lambda: self.graph)
        lock = self._lock_for(session_id)
        await asyncio.to_thread(lock.acquire)
        try:
            state = await graph.aget_state(config)
            history = list(state.values.get("messages", []))
            await graph.aupdate_state(
                config, self._update(history, converted, model), as_node=WRITER_NODE
            )
        finally:
            lock.release()

    async def get_conversation(self, session_id: str) -> list[BaseMessage]:
        """The session's messages, oldest first (empty for an unknown session)."""
        graph = await asyncio.to_thread(lambda: self.graph)
        state = await graph.aget_state(self._config(session_id))
        return list(state.values.get("messages", []))

    async def clear(self, session_id: str) -> None:
        """Delete the session's thread (every checkpoint and key of it)."""
        self._config(session_id)
        saver = await asyncio.to_thread(lambda: self.saver)
        await saver.adelete_thread(session_id)

    # ------------------------------------------------------------------ sync API
    def add_message_sync(
        self, session_id: str, message: MessageInput, model: str | None = None
    ) -> None:
        """Sync :meth:`add_message`."""
        config = self._config(session_id)
        converted = to_message(message)
        with self._lock_for(session_id):
            state = self.graph.get_state(config)
            history = list(state.values.get("messages", []))
            self.graph.update_state(
                config, self._update(history, converted, model), as_node=WRITER_NODE
            )

    def get_conversation_sync(self, session_id: str) -> list[BaseMessage]:
        """Sync :meth:`get_conversation`."""
        state = self.graph.get_state(self._config(session_id))
        return list(state.values.get("messages", []))

    def clear_sync(self, session_id: str) -> None:
        """Sync :meth:`clear`."""
        self._config(session_id)
        self.saver.delete_thread(session_id)
