"""Import langchain-community ``RedisChatMessageHistory`` sessions into streamagent threads.

The histories are read with langchain-community's own class (the one place streamagent
uses langchain-community), so whatever it wrote is read back exactly as it would read it.
Each session becomes a thread (``thread_prefix + session_id``) of the given checkpointer,
written through LangGraph's ``update_state`` on a graph of the agent's shape, so the agent
continues the conversation on its next run. Messages get deterministic ids (session,
position, content): running the import again adds only what is new and reports the rest as
already present. Every history is read and checked before anything is written: a corrupt
history raises :class:`~streamagent.errors.InvalidInputError` and nothing is imported.

Example:
    >>> from langgraph.checkpoint.memory import InMemorySaver
    >>> report = import_chat_histories(  # doctest: +SKIP
    ...     source_url="redis://127.0.0.1:6379/0", saver=InMemorySaver())
    >>> report.summary()  # doctest: +SKIP
    '2 histories: 14 messages imported, 0 already present'
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from langchain_core.messages import BaseMessage, message_to_dict
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from streamagent.errors import InvalidInputError, MemoryUnavailable, redact
from streamagent.memory.conversation import WRITER_NODE, _view_graph

__all__ = ["HistoryImport", "ImportReport", "import_chat_histories"]

DEFAULT_KEY_PREFIX = "message_store:"


@dataclass(frozen=True, kw_only=True)
class HistoryImport:
    """What happened to one session."""

    session_id: str
    thread_id: str
    imported: int
    already_present: int


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """The outcome of :func:`import_chat_histories` (``dry_run``: what would be imported)."""

    histories: list[HistoryImport] = field(default_factory=list)
    dry_run: bool = False

    @property
    def imported(self) -> int:
        return sum(h.imported for h in self.histories)

    @property
    def already_present(self) -> int:
        return sum(h.already_present for h in self.histories)

    def summary(self) -> str:
        verb = "would be imported" if self.dry_run else "imported"
        return (
            f"{len(self.histories)} histories: {self.imported} messages {verb}, "
            f"{self.already_present} already present"
        )


def _history_class() -> Any:
    with warnings.catch_warnings():  # its sunset notice: this import is deliberate
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.chat_message_histories import RedisChatMessageHistory
    return RedisChatMessageHistory


def _session_ids(client: redis.Redis, key_prefix: str) -> list[str]:
    found = []
    for key in client.scan_iter(match=_glob_escape(key_prefix) + "*", count=1000):
        if client.type(key) in (b"list", "list"):
            name = key.decode() if isinstance(key, bytes) else str(key)
            found.append(name[len(key_prefix) :])
    return sorted(found)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _with_ids(session_id: str, messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    out = []
    for position, message in enumerate(messages):
        body = json.dumps(message_to_dict(message), sort_keys=True, default=str)
        digest = hashlib.sha256(f"{session_id}\0{position}\0{body}".encode()).hexdigest()
        out.append(message.model_copy(update={"id": f"lc-{digest[:24]}"}))
    return out


def _read_all(
    source_url: str, key_prefix: str, session_ids: Sequence[str] | None
) -> dict[str, list[BaseMessage]]:
    history_class = _history_class()
    client = redis.Redis.from_url(source_url, socket_connect_timeout=2.0, socket_timeout=10.0)
    try:
        ids = list(session_ids) if session_ids is not None else _session_ids(client, key_prefix)
        histories = {}
        for session_id in ids:
            history = history_class(session_id, url=source_url, key_prefix=key_prefix)
            try:
                messages = history.messages
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                raise InvalidInputError(
                    f"chat history {session_id!r} cannot be read ({type(exc).__name__}: "
                    f"{exc}); nothing was imported"
                ) from exc
            finally:
                history.redis_client.close()
            histories[session_id] = _with_ids(session_id, messages)
        return histories
    except redis.RedisError as exc:
        raise MemoryUnavailable(
            f"cannot read chat histories from {redact(source_url)}: {exc}; nothing was imported"
        ) from exc
    finally:
        client.close()


def import_chat_histories(
    *,
    source_url: str,
    saver: BaseCheckpointSaver[Any],
    key_prefix: str = DEFAULT_KEY_PREFIX,
    session_ids: Sequence[str] | None = None,
    thread_prefix: str = "",
    dry_run: bool = False,
) -> ImportReport:
    """Import ``RedisChatMessageHistory`` sessions (all under ``key_prefix``, or
    ``session_ids``) from ``source_url`` into threads of ``saver``; idempotent."""
    histories = _read_all(source_url, key_prefix, session_ids)
    graph = _view_graph(saver)
    results = []
    for session_id, messages in histories.items():
        thread_id = thread_prefix + session_id
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        present = {m.id for m in graph.get_state(config).values.get("messages", [])}
        new = [m for m in messages if m.id not in present]
        if new and not dry_run:
            graph.update_state(config, {"messages": new}, as_node=WRITER_NODE)
        results.append(
            HistoryImport(
                session_id=session_id,
                thread_id=thread_id,
                imported=len(new),
                already_present=len(messages) - len(new),
            )
        )
    return ImportReport(histories=results, dry_run=dry_run)
