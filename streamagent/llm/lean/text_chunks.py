"""The text deltas of a Chat Completions stream as ``ChatOpenAI`` builds them, without validation.

Almost every chunk of a streamed reply is a plain text delta::

    {"choices": [{"index": 0, "delta": {"content": "tok"}, "finish_reason": null}], ...}

``ChatOpenAI._convert_chunk_to_generation_chunk`` turns it into an ``AIMessageChunk`` inside a
``ChatGenerationChunk`` through pydantic validation and four model validators (tool-call
back-compat, tool-call parsing, server tool calls, the generation's text) — ~12 µs of CPU per
chunk, most of a lean stream's conversion cost, to produce objects whose every field is known
in advance for this shape. :class:`TextChunkFactory` builds those same two objects directly:
the same class, the same field values (fresh containers per chunk), the same
``model_fields_set``, ``__pydantic_extra__`` and ``__pydantic_private__``, and the generation's
``text`` as the same ``TextAccessor`` string.

Only that one shape is taken (:meth:`TextChunkFactory.build` returns ``None`` for anything else:
a role other than assistant, tool-call or function-call deltas, a finish reason, logprobs,
usage, non-string content, an unknown envelope), and only when a self-check at first use finds
the direct objects identical to ``ChatOpenAI``'s for sample deltas; if an upgraded
langchain-core or langchain-openai builds them differently, the factory turns itself off and
every chunk takes ``ChatOpenAI``'s own path.
``tests/unit_tests/test_text_delta_chunks_match_chat_openai.py`` compares
the two paths on every delta shape, and the integration tests compare whole streams with plain
``ChatOpenAI``.
"""

from __future__ import annotations

import logging
from typing import Any

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk

from streamagent._upstream import langchain_core_private as lcp

__all__ = ["TextChunkFactory", "same_model"]

logger = logging.getLogger(__name__)

_new = object.__new__
_set = object.__setattr__
# what ``AIMessageChunk(content=..., additional_kwargs={}, id=..., tool_call_chunks=[])`` records
_MESSAGE_FIELDS_SET = frozenset({"content", "additional_kwargs", "id", "tool_call_chunks"})
_GENERATION_FIELDS_SET = frozenset({"text", "generation_info", "message"})
_PROVIDER = "openai"
# sample deltas of the self-check (content, id)
_SAMPLES: tuple[dict[str, Any], ...] = (
    {"content": "tok"},
    {"role": "assistant", "content": ""},
    {"content": None, "id": "d-1"},
    {"content": " two words", "refusal": None},
)


def _message(content: str, id_: Any) -> AIMessageChunk:
    message: AIMessageChunk = _new(AIMessageChunk)
    _set(
        message,
        "__dict__",
        {
            "content": content,
            "additional_kwargs": {},
            "response_metadata": {"model_provider": _PROVIDER},
            "type": "AIMessageChunk",
            "name": None,
            "id": id_,
            "tool_calls": [],
            "invalid_tool_calls": [],
            "usage_metadata": None,
            "tool_call_chunks": [],
            "chunk_position": None,
        },
    )
    _set(message, "__pydantic_fields_set__", set(_MESSAGE_FIELDS_SET))
    _set(message, "__pydantic_extra__", {})
    _set(message, "__pydantic_private__", None)
    return message


def _generation(content: str, id_: Any) -> ChatGenerationChunk:
    generation: ChatGenerationChunk = _new(ChatGenerationChunk)
    _set(
        generation,
        "__dict__",
        {
            "text": lcp.TextAccessor(content),
            "generation_info": None,
            "type": "ChatGenerationChunk",
            "message": _message(content, id_),
        },
    )
    _set(generation, "__pydantic_fields_set__", set(_GENERATION_FIELDS_SET))
    _set(generation, "__pydantic_extra__", None)
    _set(generation, "__pydantic_private__", None)
    return generation


def same_model(a: Any, b: Any) -> bool:
    """Whether two pydantic objects are indistinguishable: class, fields (recursively, with
    each field value's type), fields set, extra and private attributes."""
    if type(a) is not type(b):
        return False
    if not hasattr(a, "__pydantic_fields_set__"):
        return bool(a == b)
    if (
        a.__pydantic_fields_set__ != b.__pydantic_fields_set__
        or a.__pydantic_extra__ != b.__pydantic_extra__
        or a.__pydantic_private__ != b.__pydantic_private__
        or a.__dict__.keys() != b.__dict__.keys()
    ):
        return False
    return all(
        type(value) is type(b.__dict__[key]) and same_model(value, b.__dict__[key])
        for key, value in a.__dict__.items()
    )


class TextChunkFactory:
    """Builds ``ChatOpenAI``'s generation chunk for a plain text delta (see the module)."""

    __slots__ = ("_enabled",)

    def __init__(self) -> None:
        self._enabled: bool | None = None  # decided by the self-check at first use

    def enabled(self, convert: Any) -> bool:
        """Whether the direct path is on; ``convert`` is ``ChatOpenAI``'s converter, used for
        the self-check the first time."""
        if self._enabled is None:
            self._enabled = self._check(convert)
        return self._enabled

    @staticmethod
    def _check(convert: Any) -> bool:
        try:
            for delta in _SAMPLES:
                chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                expected = convert(chunk, AIMessageChunk, {})
                actual = TextChunkFactory.build(chunk)
                if actual is None or not same_model(actual, expected):
                    logger.warning(
                        "streamed text chunks take ChatOpenAI's conversion: this "
                        "langchain-core/langchain-openai builds them differently"
                    )
                    return False
        except Exception:  # any surprise: the always-correct path
            logger.warning("streamed text chunks take ChatOpenAI's conversion", exc_info=True)
            return False
        return True

    @staticmethod
    def build(chunk: dict[str, Any]) -> ChatGenerationChunk | None:
        """The generation chunk of a plain text delta, or ``None`` for any other chunk."""
        delta = _plain_delta(chunk)
        if delta is None:
            return None
        role = delta.get("role")
        content = delta.get("content") or ""
        if type(content) is not str or (role is not None and role != "assistant"):
            return None
        return _generation(content, delta.get("id"))


def _plain_delta(chunk: dict[str, Any]) -> dict[str, Any] | None:
    """The delta of a chunk with one choice, no finish reason, logprobs, usage or tool calls."""
    if "type" in chunk or chunk.get("usage"):
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or not choices:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") or choice.get("logprobs"):
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or delta.get("tool_calls") or delta.get("function_call"):
        return None
    return delta
