"""``with server:`` for the loopback servers of :mod:`streamagent.testing` (start / stop)."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

__all__ = ["StartStop"]


class StartStop:
    """A context manager over ``start()`` (returning the object) and ``stop()``."""

    def start(self) -> Self:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        self.stop()
