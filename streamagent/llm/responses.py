"""OpenAI's Responses API for the agent's own chat model (``ModelConfig.use_responses_api``).

``ModelConfig(use_responses_api=True)`` and/or ``reasoning={...}`` are applied by
:func:`streamagent.llm.create_chat_model` (ChatOpenAI switches to the Responses API on its own
when ``reasoning`` is set). The Responses API reports no ``finish_reason``: a stream that ended with
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

from langchain_core.messages import BaseMessage

__all__ = ["reasoning_text", "responses_finish_reason"]


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
