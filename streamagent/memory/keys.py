"""The Redis keys of the savers (no I/O): the eleven keys of a thread, by name.

All keys of a thread share the hash tag ``{prefix:thread_id}``, so they live in one Cluster
slot and every Lua script touches one node. The order of :class:`ThreadKeys` is the order
of ``KEYS`` in the scripts (see :mod:`streamagent.memory._lua`).

Example:
    >>> keys = thread_keys("sa", "t1")
    >>> keys.cp, keys.turn
    ('{sa:t1}:cp', '{sa:t1}:turn')
    >>> thread_of_index_key("sa", keys.idx.encode())
    't1'
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

__all__ = [
    "DATA_KEYS",
    "KEY_KINDS",
    "ThreadKeys",
    "encoded_thread_keys",
    "index_match",
    "schema_key",
    "thread_keys",
    "thread_of_index_key",
]

KEY_KINDS = ("cp", "refs", "idx", "blobs", "msgs", "w", "wi", "ns", "head", "seen", "turn")
#: how many of a thread's keys hold its data (the rest: tombstone and turn lock)
DATA_KEYS = 9


class ThreadKeys(NamedTuple):
    """The keys of one thread (see ``_lua.py`` for what each holds)."""

    cp: str
    refs: str
    idx: str
    blobs: str
    msgs: str
    w: str
    wi: str
    ns: str
    head: str
    seen: str
    turn: str

    @property
    def data(self) -> tuple[str, ...]:
        """The keys holding the thread's data (not its tombstone or turn lock)."""
        return self[:DATA_KEYS]


assert ThreadKeys._fields == KEY_KINDS


def thread_keys(prefix: str, thread_id: str) -> ThreadKeys:
    """The keys of ``thread_id`` under ``prefix`` (all in one hash slot)."""
    tag = f"{{{prefix}:{thread_id}}}:"
    return ThreadKeys._make([tag + kind for kind in KEY_KINDS])


@lru_cache(maxsize=4096)
def encoded_thread_keys(prefix: str, thread_id: str) -> tuple[bytes, ...]:
    """:func:`thread_keys` as the bytes a script call sends (cached: a thread's calls do not
    build and encode its eleven key names again)."""
    return tuple(key.encode() for key in thread_keys(prefix, thread_id))


def schema_key(prefix: str) -> str:
    """The key recording the storage schema version of ``prefix`` (written by ``setup``)."""
    return f"{prefix}:schema"


def index_match(prefix: str) -> str:
    """SCAN pattern matching the ``idx`` key of every thread under ``prefix``."""
    return f"{{{prefix}:*}}:idx"


def thread_of_index_key(prefix: str, key: bytes | str) -> str:
    """The thread id in an ``idx`` key name (the inverse of :func:`thread_keys`)."""
    text = key.decode() if isinstance(key, bytes) else key
    return text[len(prefix) + 2 : -len("}:idx")]
