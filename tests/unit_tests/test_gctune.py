"""``tune_gc`` / ``restore_gc``: opt-in collector settings, fully undone by ``restore_gc``."""

from __future__ import annotations

import gc

import pytest

import streamagent.observability
from streamagent.observability.gc import DEFAULT_THRESHOLDS, GcSettings, restore_gc, tune_gc


def test_tune_freezes_sets_thresholds_and_restore_undoes_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    kept = [[i] for i in range(100)]  # alive containers: frozen by tune_gc
    previous = tune_gc()
    try:
        assert previous == GcSettings(thresholds=before, frozen=True)
        assert gc.get_threshold() == DEFAULT_THRESHOLDS
        assert gc.get_freeze_count() >= len(kept)
        assert not any(o is kept for o in gc.get_objects()), "frozen objects left the collector"
    finally:
        restore_gc(previous)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_are_still_collected_after_tuning() -> None:
    previous = tune_gc(freeze=False, thresholds=(10, 1, 1))
    try:
        assert gc.get_freeze_count() == 0

        class Node:
            pass

        for _ in range(200):
            a, b = Node(), Node()
            a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
        gc.collect()
        assert not [o for o in gc.get_objects() if type(o) is Node]
    finally:
        restore_gc(previous)


def test_invalid_thresholds_are_refused_without_changing_anything() -> None:
    before = gc.get_threshold()
    with pytest.raises(ValueError, match="positive"):
        tune_gc(thresholds=(0, 10, 10))
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_exported_from_observability() -> None:
    assert streamagent.observability.tune_gc is tune_gc
    assert streamagent.observability.restore_gc is restore_gc
