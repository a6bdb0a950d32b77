"""The Lua scripts of the Redis savers: package data files, loaded once at import (no I/O
beyond reading them).

The scripts are ``streamagent/memory/lua/<name>.lua``; the pieces they share are in
``lua/lib/`` (``keys``: the thread's keys by name, always first; ``thread``: manifest,
expiry, tombstone, fencing; ``refs``: the stored encodings; ``reply``: replies packed into
one string; ``resolve``: delta chains; ``gc``: removing checkpoints and what only they
referenced). The first line of a file,
``-- needs: <pieces>``, says which pieces go before it; a script carries only those.

Every script receives the eleven keys of ONE thread (see
:class:`streamagent.memory.keys.ThreadKeys`), which share one hash tag, so each script runs
atomically on one node, also on Redis Cluster.

Keys (``KEYS[i]``, named in the scripts)::

    1 CP     HASH  "ns\\0id" -> checkpoint record (msgpack: checkpoint, metadata, parent id)
    2 REFS   HASH  "ns\\0id" -> "<parent id>\\2" + "channel\\0version" entries joined by "\\1"
    3 IDX    ZSET  "ns\\0id", score 0 (lexicographic: LangGraph's listing order)
    4 BLOBS  HASH  "ns\\0channel\\0version" -> typed value
    5 MSGS   HASH  message ref (24 hex chars of a content digest) -> typed message
    6 W      HASH  "ns\\0id\\0task_id\\0idx" -> "type\\0channel\\0task_path\\0payload"
    7 WI     ZSET  the fields of ``W``, score 0 (lexicographic, per checkpoint ranges)
    8 NS     ZSET  namespace -> insertion sequence
    9 HEAD   HASH  namespace -> id of its head checkpoint (the last one written);
                   "\\1k" -> manifest: which of keys 1-8 must exist ("1"/"0" each)
   10 SEEN   HASH  "s" -> "1" while the thread lives, "0" after ``delete_thread``;
                   "f" -> the thread's fencing counter (the last turn token issued). It
                   outlives the data by the saver's notice window, so an expired thread can
                   be told apart from one that never existed, and a late writer of a turn
                   from before an expiry or deletion stays fenced out
   11 TURN   STRING the token of the turn holding the thread (expires; see ``turns.py``)

"Latest" is the head pointer, advanced in the same script as the write, never the largest
id: a worker whose clock is skewed (uuid6 ids come from the local clock) can neither hide its
own checkpoint nor later ones. Every script that reads or writes first checks the manifest:
a key that should exist and does not (evicted, deleted by hand) is reported as ``C<piece>``,
never read as an empty thread. ``R``/``D`` typed values are lists of messages (``R``: their
refs concatenated; ``D``: ``D\\0<base version>\\0<refs>`` = the base blob of the same channel
followed by ``<refs>``); ``S`` is a ``DeltaChannel`` snapshot of a message list (refs).
The refs of a checkpoint name only blobs that existed when it was written, so a referenced
blob that is missing was lost. Writes are applied last-record-last: blobs and messages
before the checkpoint record, so a failure part-way never leaves a readable half checkpoint.

Example:
    >>> PUT.name, len(PUT.sha)
    ('put', 40)
    >>> "local function collect_garbage" in READ.text  # the read carries no gc code
    False
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import NamedTuple

__all__ = [
    "ACQUIRE",
    "DELETE_CHECKPOINTS",
    "DELETE_THREAD",
    "DUMP",
    "HISTORY",
    "MIGRATE",
    "NAMES",
    "PRUNE",
    "PUT",
    "PUT_WRITES",
    "READ",
    "RELEASE",
    "RESTORE",
    "Script",
    "load",
]

#: the shared pieces, in the order a script carries them
LIBRARY = ("keys", "thread", "refs", "reply", "resolve", "gc")


class Script(NamedTuple):
    """A script's name, full text (its pieces first) and SHA-1 (what ``EVALSHA`` names)."""

    name: str
    text: str
    sha: str


def _source(path: str) -> tuple[str, list[str]]:
    """The text of ``lua/<path>.lua`` and the pieces its ``-- needs:`` line names."""
    text = (resources.files("streamagent.memory") / "lua" / f"{path}.lua").read_text("utf-8")
    first, _, _ = text.partition("\n")
    if not first.startswith("-- needs:"):
        return text, []
    needs = first.removeprefix("-- needs:").split()
    unknown = set(needs) - set(LIBRARY)
    if unknown:
        raise ValueError(f"lua/{path}.lua needs unknown pieces {sorted(unknown)}")
    return text, needs


def load(name: str) -> Script:
    """The script ``lua/<name>.lua`` with the pieces it needs (and theirs) before it."""
    body, needs = _source(name)
    wanted = {"keys"}
    pending = list(needs)
    while pending:
        piece = pending.pop()
        if piece not in wanted:
            wanted.add(piece)
            pending.extend(_source(f"lib/{piece}")[1])
    text = "".join(_source(f"lib/{piece}")[0] for piece in LIBRARY if piece in wanted) + body
    return Script(name, text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


#: every script, by file name
NAMES = (
    "read",
    "put",
    "put_writes",
    "delete_thread",
    "delete_checkpoints",
    "prune",
    "dump",
    "restore",
    "history",
    "migrate",
    "acquire",  # the turn lock (see ``streamagent.memory.turns``)
    "release",
)
(
    READ,
    PUT,
    PUT_WRITES,
    DELETE_THREAD,
    DELETE_CHECKPOINTS,
    PRUNE,
    DUMP,
    RESTORE,
    HISTORY,
    MIGRATE,
    ACQUIRE,
    RELEASE,
) = (load(name) for name in NAMES)
