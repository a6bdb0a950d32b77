"""What one saver process knows about the threads it used (no I/O; bounded; thread-safe).

None of it is a source of truth: every shortcut it enables is checked by the scripts (a
put whose known messages or delta base are gone is sent again in full), and a thread it
remembers only turns "a thread that is not there" into :class:`ThreadExpiredError`
(``lost``) instead of an empty read.

Example:
    >>> memory = ThreadMemory(known_threads=10, window_seconds=60)
    >>> memory.remember_thread("t")
    >>> memory.knew("t"), memory.knew("t")  # forgotten once reported
    (True, False)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

__all__ = ["DELTA_CACHE_SIZE", "STORED_THREADS", "ListKey", "ListState", "ThreadMemory"]

#: (thread, ns, channel) of a message list a put stored
ListKey: TypeAlias = tuple[str, str, str]
#: (version, refs, delta depth) of that list
ListState: TypeAlias = tuple[str, tuple[str, ...], int]

#: message lists remembered as bases of later deltas
DELTA_CACHE_SIZE = 4096
#: threads whose stored messages / last read are remembered
STORED_THREADS = 1024


class ThreadMemory:
    """The process's knowledge of threads: which exist (``known_threads`` of them, for
    ``window_seconds``), which messages each stores, the last message list each channel
    stored, the messages each thread's last read returned."""

    def __init__(self, *, known_threads: int, window_seconds: float) -> None:
        self.known_threads = known_threads
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        # thread -> monotonic time this process last saw it stored
        self._known: OrderedDict[str, float] = OrderedDict()
        self._lists: OrderedDict[ListKey, ListState] = OrderedDict()
        # thread -> refs of messages this process knows are stored (verified by the scripts)
        self._stored: OrderedDict[str, set[str]] = OrderedDict()
        # thread -> refs of the messages its last read returned
        self._last_read: OrderedDict[str, tuple[str, ...]] = OrderedDict()

    # ------------------------------------------------------------------ threads
    def remember_thread(self, thread_id: str) -> None:
        """Note that ``thread_id`` is stored (a later read that finds it gone says so)."""
        if not self.known_threads:
            return
        with self._lock:
            self._known[thread_id] = time.monotonic()
            self._known.move_to_end(thread_id)
            while len(self._known) > self.known_threads:
                self._known.popitem(last=False)

    def knew(self, thread_id: str) -> bool:
        """Whether ``thread_id`` was seen stored within the window (forgets it)."""
        with self._lock:
            seen = self._known.pop(thread_id, None)
        return seen is not None and time.monotonic() - seen <= self.window_seconds

    def forget(self, thread_id: str) -> None:
        """Drop everything known about a deleted, expired or replaced thread."""
        with self._lock:
            for key in [k for k in self._lists if k[0] == thread_id]:
                del self._lists[key]
            self._stored.pop(thread_id, None)
            self._last_read.pop(thread_id, None)
            self._known.pop(thread_id, None)

    # ------------------------------------------------------------------ messages
    def known_refs(self, thread_id: str, refs: Iterable[str]) -> set[str]:
        """Those of ``refs`` this process knows ``thread_id`` stores."""
        with self._lock:
            stored = self._stored.get(thread_id)
            return {ref for ref in refs if ref in stored} if stored else set()

    def remember_stored(self, thread_id: str, refs: Iterable[str]) -> None:
        """Record message refs a successful write stored (not sent again, only checked)."""
        with self._lock:
            stored = self._stored.setdefault(thread_id, set())
            stored.update(refs)
            self._stored.move_to_end(thread_id)
            while len(self._stored) > STORED_THREADS:
                self._stored.popitem(last=False)

    # ------------------------------------------------------------------ message lists
    def last_list(self, key: ListKey) -> ListState | None:
        """The last message list this process stored for ``(thread, ns, channel)``."""
        with self._lock:
            return self._lists.get(key)

    def remember_lists(self, updates: Sequence[tuple[ListKey, ListState]], *, full: bool) -> None:
        """Record the lists a successful put stored, as bases for later deltas (``full``:
        the put sent every list whole, so each starts a new delta chain)."""
        with self._lock:
            for key, (version, refs, depth) in updates:
                self._lists[key] = (version, refs, 0 if full else depth)
                self._lists.move_to_end(key)
            while len(self._lists) > DELTA_CACHE_SIZE:
                self._lists.popitem(last=False)

    # ------------------------------------------------------------------ reads
    def last_read(self, thread_id: str) -> tuple[str, ...] | None:
        """The refs of the messages the last read of ``thread_id`` returned."""
        with self._lock:
            return self._last_read.get(thread_id)

    def remember_read(self, thread_id: str, refs: Mapping[str, None]) -> None:
        """Record the refs a read returned, in list order."""
        with self._lock:
            self._last_read[thread_id] = tuple(refs)
            self._last_read.move_to_end(thread_id)
            while len(self._last_read) > STORED_THREADS:
                self._last_read.popitem(last=False)
