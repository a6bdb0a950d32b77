"""``remember`` / ``recall``: an example tool pair over LangGraph's store for the current user.

The tools reach the graph's store the standard way (``langgraph.config.get_store()``) and the
current user through ``config["configurable"][user_key]``; memories live under
``(*namespace, user_id)``. ``recall`` ranks by meaning when the store has an index, else it
returns the newest memories.

Example:
    >>> remember, recall = memory_tools()
    >>> remember.name, recall.name
    ('remember', 'recall')
"""

from __future__ import annotations

import hashlib
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from langgraph.config import get_config, get_store
from langgraph.store.base import BaseStore
from pydantic import BaseModel, Field

from streamagent.errors import ConfigurationError

__all__ = ["memory_tools"]


class _RememberArgs(BaseModel):
    fact: str = Field(description="One short fact about the user, in a full sentence.")


class _RecallArgs(BaseModel):
    query: str = Field(description="What to look for in the user's memories.")


class _Memories:
    """The shared logic of both tools (plain methods: testable without a graph)."""

    def __init__(self, namespace: tuple[str, ...], user_key: str, limit: int) -> None:
        self.namespace = namespace
        self.user_key = user_key
        self.limit = limit

    def scope(self) -> tuple[BaseStore, tuple[str, ...]]:
        store = get_store()
        if store is None:
            raise ConfigurationError("the memory tools need a graph compiled with a store")
        user = (get_config().get("configurable") or {}).get(self.user_key)
        if not user:
            raise ConfigurationError(
                f"set config['configurable'][{self.user_key!r}] to the user's id"
            )
        return store, (*self.namespace, str(user))

    @staticmethod
    def key(fact: str) -> str:
        return hashlib.sha256(fact.strip().lower().encode()).hexdigest()[:16]

    def search_args(self, store: BaseStore, query: str) -> dict[str, Any]:
        indexed = bool(getattr(store, "index_config", None))
        return {"query": query if indexed else None, "limit": self.limit}

    @staticmethod
    def render(items: list[Any]) -> str:
        if not items:
            return "No memories about this user yet."
        return "\n".join(f"- {item.value.get('text', '')}" for item in items)

    def remember(self, fact: str) -> str:
        store, ns = self.scope()
        store.put(ns, self.key(fact), {"text": fact.strip()})
        return f"Remembered: {fact.strip()}"

    async def aremember(self, fact: str) -> str:
        store, ns = self.scope()
        await store.aput(ns, self.key(fact), {"text": fact.strip()})
        return f"Remembered: {fact.strip()}"

    def recall(self, query: str) -> str:
        store, ns = self.scope()
        return self.render(store.search(ns, **self.search_args(store, query)))

    async def arecall(self, query: str) -> str:
        store, ns = self.scope()
        return self.render(await store.asearch(ns, **self.search_args(store, query)))


def memory_tools(
    *, namespace: tuple[str, ...] = ("memories",), user_key: str = "user_id", limit: int = 5
) -> list[BaseTool]:
    """``[remember, recall]`` for the user in ``config["configurable"][user_key]``."""
    memories = _Memories(tuple(namespace), user_key, limit)
    remember = StructuredTool.from_function(
        func=memories.remember,
        coroutine=memories.aremember,
        name="remember",
        description="Save a fact about the current user for future conversations.",
        args_schema=_RememberArgs,
    )
    recall = StructuredTool.from_function(
        func=memories.recall,
        coroutine=memories.arecall,
        name="recall",
        description="Look up what you remember about the current user.",
        args_schema=_RecallArgs,
    )
    return [remember, recall]
