"""``tune_gc``: opt-in garbage-collector settings for a process that streams many runs at once.

CPython's cyclic garbage collector stops the event loop while it walks its objects. A full
(oldest-generation) collection walks *every* tracked object: the ~200,000 that importing
LangChain, LangGraph and the OpenAI SDK leaves behind, plus a few hundred per running agent
session, so with hundreds of concurrent streams one full collection stalls every stream for
hundreds of milliseconds. streamagent never changes the collector's settings by itself (that is
the application's call); a server can opt in once at start-up, after its imports and warm-up::

    import streamagent

    agent = streamagent.build_agent(...)
    previous = streamagent.observability.tune_gc()  # after warm-up
    ...  # later: streamagent.observability.restore_gc(previous)

:func:`tune_gc` collects once, then ``gc.freeze()``\\ s what is alive (imported modules, the
built agent: never collected again, at no cost) and raises the thresholds so young collections
are rarer but larger (objects of a streamed chunk die before they are ever promoted) and full
collections are rare. Reference cycles still get collected, only later: memory held by cyclic
garbage grows by up to a young generation's worth of objects between collections.

Example:
    >>> import gc
    >>> previous = tune_gc(freeze=False)
    >>> gc.get_threshold() == DEFAULT_THRESHOLDS
    True
    >>> restore_gc(previous)
    >>> gc.get_threshold() == previous.thresholds
    True
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

__all__ = ["DEFAULT_THRESHOLDS", "GcSettings", "restore_gc", "tune_gc"]

logger = logging.getLogger(__name__)

#: ``gc.set_threshold`` values of :func:`tune_gc`: a young collection per 50,000 net new
#: container objects (CPython's default: 700), an older one per 20 young ones, a full one at
#: most per 100 older ones (and, as always, only once the survivors grew by 25 %).
DEFAULT_THRESHOLDS: tuple[int, int, int] = (50_000, 20, 100)


@dataclass(frozen=True, slots=True)
class GcSettings:
    """The collector's settings before :func:`tune_gc` (pass to :func:`restore_gc`)."""

    thresholds: tuple[int, int, int]
    frozen: bool


def tune_gc(
    *, freeze: bool = True, thresholds: tuple[int, int, int] = DEFAULT_THRESHOLDS
) -> GcSettings:
    """Collect, optionally ``gc.freeze()`` what is alive, and set ``thresholds``.

    Call it once after start-up (imports done, agents built, ideally one warm-up turn run);
    returns the previous settings for :func:`restore_gc`.
    """
    if len(thresholds) != 3 or any(t < 1 for t in thresholds):
        raise ValueError("thresholds are three positive integers (young, middle, old)")
    t0, t1, t2 = gc.get_threshold()
    previous = GcSettings(thresholds=(t0, t1, t2), frozen=freeze)
    gc.collect()
    if freeze:
        gc.freeze()
    gc.set_threshold(*thresholds)
    logger.info(
        "garbage collector tuned: thresholds %s, %d objects frozen",
        thresholds,
        gc.get_freeze_count(),
    )
    return previous


def restore_gc(previous: GcSettings) -> None:
    """Undo :func:`tune_gc`: the previous thresholds, and ``gc.unfreeze()`` if it froze."""
    gc.set_threshold(*previous.thresholds)
    if previous.frozen:
        gc.unfreeze()
