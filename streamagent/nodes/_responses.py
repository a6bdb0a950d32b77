"""OpenAI's Responses API for the agent's own chat model (``ModelConfig.use_responses_api``).

``ModelConfig(use_responses_api=True)`` and/or ``reasoning={...}`` are applied to the
``ChatOpenAI`` the model node builds (ChatOpenAI switches to the Responses API on its own when
``reasoning`` is set). The Responses API reports no ``finish_reason``: a stream that ended with
``response.completed`` has ``status="completed"`` (``incomplete``: cut by a limit), which
:func:`responses_finish_reason` turns into the ``finish_reason`` the model node checks.
Reasoning summaries arrive as ``reasoning`` content blocks: :func:`reasoning_text`.

Example:
    >>> from langchain_core.messages import AIMessageChunk
    >>> chunk = AIMessageChunk(content=[{"type": "reasoning", "index": 0,
    ...     "summary": [{"index": 0, "type": "summary_text", "text": "Think."}]}])
    >>> reasoning_text(chunk)
    'Think.'
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from streamagent.config import ModelConfig

__all__ = ["reasoning_text", "responses_finish_reason", "with_responses_api"]


def with_responses_api(llm: BaseChatModel, config: ModelConfig) -> BaseChatModel:
    """``llm`` with the configuration's Responses API switch and reasoning options."""
    update: dict[str, Any] = {}
    if config.use_responses_api is not None:
        update["use_responses_api"] = config.use_responses_api
    if config.reasoning is not None:
        update["reasoning"] = dict(config.reasoning)
    if update.get("use_responses_api") is not False and update:
        # the Responses API refuses these Chat Completions options (even at their defaults)
        for name in ("presence_penalty", "frequency_penalty"):
            if not getattr(llm, name, None):
                update[name] = None
    return llm.model_copy(update=update) if update else llm


def responses_finish_reason(merged: BaseMessage) -> None:
    """Set ``finish_reason`` from a completed Responses API stream's ``status``."""
    metadata = merged.response_metadata
    if metadata.get("finish_reason"):
        return
    status = metadata.get("status")
    calls = getattr(merged, "tool_call_chunks", None) or getattr(merged, "tool_calls", None)
    if status == "completed":
        metadata["finish_reason"] = "tool_calls" if calls else "stop"
    elif status == "incomplete":
        metadata["finish_reason"] = "length"


def reasoning_text(message: BaseMessage) -> str:
    """The reasoning-summary text a (streamed) message carries."""
    if isinstance(message.content, str):
        return ""
    parts: list[str] = []
    for block in message.content:
        if isinstance(block, dict) and block.get("type") == "reasoning":
            for item in block.get("summary") or ():
                if isinstance(item, dict) and isinstance(item.get("text"), str):
                    parts.append(item["text"])
    return "".join(parts)
