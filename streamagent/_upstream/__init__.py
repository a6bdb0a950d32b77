"""Every private name of another library that streamagent uses, in one place per library.

streamagent's fast path (the lean transport, the direct text chunks, the compact chunk
bookkeeping and the token sink, see ``docs/performance.md``) reaches into private helpers of
langchain-core, langchain-openai, openai, aiohttp and langgraph. Each library has one module
here that resolves those names *guarded*: a missing or changed name never breaks
``import streamagent``; it is recorded as a :class:`Missing` piece, the fast path turns itself
off, and one warning names the piece, the library and its installed version. The stock path
(``ChatOpenAI`` over the openai SDK, LangGraph's own ``messages`` streaming) never needs any of
them.

Example:
    >>> from streamagent._upstream import fast_path_problems
    >>> fast_path_problems()  # the installed versions provide every piece
    ()
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

__all__ = [
    "Missing",
    "Piece",
    "fast_path_available",
    "fast_path_problems",
    "installed_version",
    "refresh",
    "bind_pieces",
    "optional",
    "resolve",
]

logger = logging.getLogger("streamagent.fast_path")


@dataclass(frozen=True, slots=True)
class Piece:
    """One private name: ``module.qualname`` of distribution ``library``.

    ``params`` (optional) are the leading parameter names a callable must still have: a
    renamed or reordered signature counts as missing, as a removed name does.
    """

    library: str
    module: str
    qualname: str
    params: tuple[str, ...] = ()

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass(frozen=True, slots=True)
class Missing:
    """Why a :class:`Piece` could not be used."""

    piece: Piece
    reason: str

    def describe(self) -> str:
        version = installed_version(self.piece.library) or "not installed"
        return f"{self.piece.library} {version}: {self.piece.dotted} {self.reason}"


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None``."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _leading_params(value: Any) -> tuple[str, ...] | None:
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):
        return None
    return tuple(signature.parameters)


def resolve(piece: Piece) -> Any | Missing:
    """The object ``piece`` names, or a :class:`Missing` saying why not (never raises)."""
    try:
        value: Any = importlib.import_module(piece.module)
    except Exception as exc:  # noqa: BLE001 - any import failure means: not usable
        return Missing(piece, f"cannot be imported ({type(exc).__name__}: {exc})")
    for part in piece.qualname.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            return Missing(piece, "is missing")
    if piece.params:
        params = _leading_params(value)
        if params is None or params[: len(piece.params)] != piece.params:
            return Missing(
                piece,
                f"has changed (expected parameters {piece.params}, found {params})",
            )
    return value


class _Registry:
    """The per-library resolvers and what they found missing (thread-safe, lazy)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._binders: list[Callable[[], Iterable[Missing]]] = []
        self._problems: tuple[Missing, ...] | None = None
        self._warned = False

    def register(self, binder: Callable[[], Iterable[Missing]]) -> None:
        self._binders.append(binder)
        self._problems = None

    def problems(self) -> tuple[Missing, ...]:
        if self._problems is None:
            with self._lock:
                if self._problems is None:
                    self._problems = tuple(m for bind in self._binders for m in bind())
        return self._problems

    def refresh(self) -> tuple[Missing, ...]:
        with self._lock:
            self._problems = None
            self._warned = False
        return self.problems()

    def warn_once(self) -> None:
        problems = self.problems()
        if problems and not self._warned:
            self._warned = True
            logger.warning(
                "streamagent's fast path is off (stock ChatOpenAI and LangGraph streaming are "
                "used instead): %s",
                "; ".join(m.describe() for m in problems),
            )


REGISTRY = _Registry()


def fast_path_problems() -> tuple[str, ...]:
    """One line per private piece the installed libraries lack (empty: all present)."""
    _load_all()
    return tuple(m.describe() for m in REGISTRY.problems())


def fast_path_available(*, warn: bool = True) -> bool:
    """Whether every private piece the fast path needs is present (checked once).

    When one is missing, ``warn`` logs one warning (per process) naming it.
    """
    _load_all()
    if REGISTRY.problems():
        if warn:
            REGISTRY.warn_once()
        return False
    return True


def refresh() -> tuple[str, ...]:
    """Resolve every piece again (after an upgrade in-process, or in tests)."""
    _load_all()
    return tuple(m.describe() for m in REGISTRY.refresh())


def _load_all() -> None:
    # the per-library modules register themselves when imported
    from streamagent._upstream import (  # noqa: F401
        aiohttp_private,
        langchain_core_private,
        langchain_openai_private,
        langgraph_private,
        openai_private,
    )


def bind_pieces(
    namespace: dict[str, Any],
    pieces: dict[str, Piece],
    checks: Iterable[Callable[[], Missing | None]] = (),
) -> list[Missing]:
    """Resolve ``pieces`` into ``namespace`` (``None`` for a missing one); run extra ``checks``.

    Used by the per-library modules: ``namespace`` is their ``globals()``.
    """
    missing: list[Missing] = []
    for attr, piece in pieces.items():
        value = resolve(piece)
        if isinstance(value, Missing):
            missing.append(value)
            value = None
        namespace[attr] = value
    for check in checks:
        problem = check()
        if problem is not None:
            missing.append(problem)
    return missing


def optional(piece: Piece, fallback: Any) -> Any:
    """A private name outside the fast path (``fallback`` when missing, with one warning).

    For pieces whose absence only narrows a feature (a newer or older library simply lacks
    it): the caller's ``fallback`` keeps the package importable and behaving safely.
    """
    value = resolve(piece)
    if isinstance(value, Missing):
        logger.warning("%s; using streamagent's fallback", value.describe())
        return fallback
    return value
