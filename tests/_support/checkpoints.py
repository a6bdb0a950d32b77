"""Checkpoints built by hand for the saver tests (a ``messages`` channel at a given step)."""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

__all__ = ["checkpoint"]


def checkpoint(step: int, history: list[Any], saver: Any, prev: str | None) -> Any:
    """A checkpoint whose ``messages`` channel holds ``history``, its id ordered by ``step``
    and its channel version the saver's next after ``prev``."""
    ck = empty_checkpoint()
    ck["id"] = str(uuid6(clock_seq=step))
    ck["channel_values"] = {"messages": list(history)}
    ck["channel_versions"] = {"messages": saver.get_next_version(prev, None)}
    return ck
