"""Callback handlers that record what a chat model run reports to its callbacks."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.outputs import LLMResult


class ModelRunRecorder(AsyncCallbackHandler):
    """Records each model run's tags, its start/end events, every token (with the chunk it came
    with), the ``LLMResult`` given to ``on_llm_end`` and the partial one given to
    ``on_llm_error``."""

    def __init__(self) -> None:
        self.tags: list[list[str]] = []
        self.events: list[str] = []
        self.tokens: list[str] = []
        self.token_chunks: list[Any] = []
        self.result: LLMResult | None = None
        self.error_result: LLMResult | None = None

    async def on_chat_model_start(
        self, serialized: Any, messages: Any, *, tags: list[str] | None = None, **kw: Any
    ) -> None:
        self.tags.append(list(tags or []))
        self.events.append("start")

    async def on_llm_new_token(self, token: str, **kw: Any) -> None:  # type: ignore[override]
        self.tokens.append(token)
        self.token_chunks.append(kw.get("chunk"))

    async def on_llm_end(self, response: LLMResult, **kw: Any) -> None:
        self.events.append("end")
        self.result = response

    async def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        self.events.append("error")
        self.error_result = kw.get("response")


class SyncTokenRecorder(BaseCallbackHandler):
    """Records every token of a model run (a sync handler, for sync calls)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def on_llm_new_token(self, token: str, **kw: Any) -> None:
        self.tokens.append(token)
