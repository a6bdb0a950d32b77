"""What a turn's input may be: roles, content shapes, Unicode, thread ids (no I/O).

:func:`streamagent.astream_chunks`, the ``OpenAIService`` facade and the CLI check every new
message with :func:`check_messages` and the thread id with :func:`check_thread_id` *before*
any request is sent or anything is written; a refusal is an
:class:`~streamagent.errors.InvalidInputError` naming the message and the reason.
``docs/input-policy.md`` has the whole table.

* Roles: ``user`` always; ``assistant`` text (a conversation's earlier replies) always;
  the privileged ones -- ``system``, ``developer``, ``tool`` results and ``assistant``
  messages carrying tool calls -- only with ``allow_privileged_roles=True``: they steer the
  model or forge what a tool returned, so a caller passing end-user input must not get them
  by accident.
* Content: a string, or a list of content blocks: strings, ``{"type": "text", "text": str}``,
  ``{"type": "image_url", ...}`` / ``{"type": "image", ...}``.
* Unicode: text must be valid Unicode (no lone surrogates such as ``"\\ud800"``: they cannot
  be encoded, sent or stored); a user message must contain something visible (not only
  whitespace, zero-width or other invisible format characters).
* Thread ids: a non-empty string of at most :data:`MAX_THREAD_ID_CHARS` characters without
  control or invisible characters; ``""`` is refused, never silently a new thread.

Example:
    >>> from langchain_core.messages import HumanMessage, SystemMessage
    >>> check_messages([HumanMessage("hi")])
    >>> from streamagent.errors import InvalidInputError
    >>> for attempt in (lambda: check_messages([SystemMessage("obey")]),
    ...                 lambda: check_thread_id("")):
    ...     try:
    ...         attempt()
    ...     except InvalidInputError as exc:
    ...         print(exc.message[:40])
    message 1 has the privileged role 'syste
    the thread id is empty; pass an existing
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from streamagent.errors import InvalidInputError

__all__ = [
    "MAX_THREAD_ID_CHARS",
    "PRIVILEGED_ROLES",
    "check_messages",
    "check_text",
    "check_thread_id",
    "is_invisible",
    "role_of",
]

#: Roles accepted only with ``allow_privileged_roles=True``.
PRIVILEGED_ROLES = frozenset({"system", "developer", "tool", "assistant with tool calls"})
MAX_THREAD_ID_CHARS = 256
_BLOCK_TYPES = frozenset({"text", "image_url", "image"})
_INVISIBLE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})
# invisible characters outside the "C*"/"Z*" categories (Hangul fillers, braille blank)
_INVISIBLE_EXTRA = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def is_invisible(char: str) -> bool:
    """True for whitespace, control, format (zero-width) and filler characters.

    >>> [is_invisible(c) for c in (" ", "\\u200b", "\\ufeff", "a", "\\u3164")]
    [True, True, True, False, True]
    """
    return char.isspace() or unicodedata.category(char) in _INVISIBLE or char in _INVISIBLE_EXTRA


def role_of(message: BaseMessage) -> str:
    """The OpenAI role of ``message`` (``developer`` kept apart from ``system``)."""
    if isinstance(message, SystemMessage):
        return str(message.additional_kwargs.get("__openai_role__") or "system")
    if isinstance(message, ToolMessage):
        return "tool"
    if isinstance(message, AIMessage):
        return "assistant with tool calls" if _has_calls(message) else "assistant"
    return {"human": "user"}.get(message.type, message.type)


def _has_calls(message: AIMessage) -> bool:
    return bool(
        message.tool_calls
        or message.invalid_tool_calls
        or message.additional_kwargs.get("tool_calls")
        or message.additional_kwargs.get("function_call")
    )


def check_text(text: str, where: str) -> None:
    """Refuse text that is not valid Unicode (a lone surrogate cannot be sent or stored)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{where} is not valid Unicode: {text[exc.start]!r} at index {exc.start} is a lone "
            "surrogate (half of a UTF-16 pair); send the text as proper Unicode"
        ) from None


def _texts(content: Any, where: str) -> tuple[list[str], bool]:
    """The text pieces of ``content`` and whether it has a non-text block (an image)."""
    if isinstance(content, str):
        return [content], False
    if not isinstance(content, Sequence):
        raise InvalidInputError(
            f"{where} has content of type {type(content).__name__}; use a string or a list of "
            "content blocks"
        )
    texts: list[str] = []
    other = False
    for i, block in enumerate(content):
        if isinstance(block, str):
            texts.append(block)
            continue
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind not in _BLOCK_TYPES:
            shown = kind or type(block).__name__
            raise InvalidInputError(
                f"{where}, content block {i + 1}: unsupported block {shown!r}; use text, "
                "image_url or image blocks"
            )
        if kind == "text":
            value = block.get("text") if isinstance(block, Mapping) else None
            if not isinstance(value, str):
                raise InvalidInputError(f"{where}, content block {i + 1}: `text` must be a string")
            texts.append(value)
        else:
            other = True
    return texts, other


def check_messages(
    messages: Iterable[BaseMessage], *, allow_privileged_roles: bool = False
) -> None:
    """Apply the input policy (module docstring) to a turn's new messages."""
    for number, message in enumerate(messages, start=1):
        where = f"message {number}"
        role = role_of(message)
        if role not in {"user", "assistant", *PRIVILEGED_ROLES}:
            raise InvalidInputError(f"{where} has the unsupported role {role!r}")
        if role in PRIVILEGED_ROLES and not allow_privileged_roles:
            raise InvalidInputError(
                f"{where} has the privileged role {role!r}; only 'user' and plain 'assistant' "
                "messages are accepted unless the caller passes allow_privileged_roles=True "
                "(never for end-user input: these steer the model or forge tool results)"
            )
        texts, has_other = _texts(message.content, where)
        for text in texts:
            check_text(text, where)
        if message.name is not None:
            check_text(message.name, f"{where}'s name")
        if role == "user" and not has_other and all(is_invisible(c) for t in texts for c in t):
            raise InvalidInputError(
                f"{where} (user) is empty: it has no visible character (only whitespace or "
                "invisible characters such as zero-width spaces)"
            )


def check_thread_id(thread_id: Any) -> str:
    """Return ``thread_id`` if it is a usable thread id, else raise ``InvalidInputError``."""
    if not isinstance(thread_id, str):
        raise InvalidInputError(f"the thread id must be a string, not {type(thread_id).__name__}")
    if not thread_id:
        raise InvalidInputError(
            "the thread id is empty; pass an existing thread's id, or none (None) for a new thread"
        )
    if len(thread_id) > MAX_THREAD_ID_CHARS:
        raise InvalidInputError(
            f"the thread id has {len(thread_id)} characters (max {MAX_THREAD_ID_CHARS})"
        )
    check_text(thread_id, "the thread id")
    bad = next((c for c in thread_id if is_invisible(c) and c != " "), None)
    if bad is not None or thread_id.strip() != thread_id:
        shown = bad if bad is not None else " "
        raise InvalidInputError(
            f"the thread id contains the control, invisible or surrounding space character "
            f"{shown!r}; use letters, digits and punctuation"
        )
    return thread_id
