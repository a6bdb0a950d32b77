"""Exact vector search of the Redis stores (no I/O): float32 codec and a per-namespace cache.

Vectors live in Redis (one hash per vector, ``P:v:{P:E}:<i>:<key>``, float32; the exact
path reads an item's vectors concatenated). A zero vector (a text the embedder maps to
nothing) is not stored: cosine similarity is undefined for it. A client keeps each
namespace's vectors as one normalised matrix, tagged with the namespace's version token; a
write anywhere renews the token, so the next search reloads.
Scoring is cosine similarity, max-pooled over an item's vectors (as ``InMemoryStore``), with
numpy when it is installed (one matrix-vector product) and pure Python otherwise.

Example:
    >>> blobs = pack_vectors([[3.0, 4.0], [0.0, 0.0]], dims=2)
    >>> len(blobs)  # the zero vector is dropped
    1
    >>> entry = NamespaceVectors.build("v1", [("b", None), ("a", blobs[0])], dims=2)
    >>> entry.scored_keys, entry.scoreless_keys
    (['a'], ['b'])
    >>> [round(float(s), 3) for s in entry.scores([4.0, 3.0])]
    [0.96]
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from streamagent.memory.store_core import StoreInputError

try:  # numpy makes scoring one BLAS call; the pure-Python path gives the same ranking
    import numpy as np

    HAVE_NUMPY = True
except ImportError:  # pragma: no cover - numpy ships with langchain-community
    np = None  # type: ignore[assignment]
    HAVE_NUMPY = False

__all__ = ["HAVE_NUMPY", "MAX_MERGED_BYTES", "MergedVectors", "NamespaceVectors", "pack_vectors"]

#: Largest matrix :class:`MergedVectors` builds (a copy of the namespaces' own matrices).
MAX_MERGED_BYTES = 128 * 1024 * 1024


def pack_vectors(vectors: Sequence[Sequence[float]], *, dims: int) -> list[bytes]:
    """float32 bytes of each non-zero vector of ``vectors`` (each of length ``dims``, else
    StoreInputError)."""
    out: list[bytes] = []
    for vector in vectors:
        if len(vector) != dims:
            raise StoreInputError(
                f"the embedding has {len(vector)} dimensions; the index is configured "
                f"with dims={dims}"
            )
    for vector in vectors:  # array() takes a list of floats faster than numpy does
        packed = array("f", vector if isinstance(vector, list) else [float(x) for x in vector])
        if any(packed):
            out.append(packed.tobytes())
    return out


@dataclass(slots=True)
class NamespaceVectors:
    """The vectors of one namespace at one version, ready to score."""

    version: str | None
    scored_keys: list[str]
    scoreless_keys: list[str]
    matrix: Any  # numpy (rows, dims) float32, normalised; or list of normalised rows
    starts: Any  # first row of each scored key
    dims: int

    @classmethod
    def build(
        cls, version: str | None, pairs: Sequence[tuple[str, bytes | None]], *, dims: int
    ) -> NamespaceVectors:
        scored: list[str] = []
        scoreless: list[str] = []
        blobs: list[bytes] = []
        starts: list[int] = []
        rows = 0
        width = 4 * dims
        for key, blob in sorted(pairs, key=lambda pair: pair[0]):  # ties: key order
            if not blob or len(blob) % width:
                scoreless.append(key)
                continue
            scored.append(key)
            starts.append(rows)
            blobs.append(blob)
            rows += len(blob) // width
        raw = b"".join(blobs)
        if HAVE_NUMPY:
            matrix = np.frombuffer(raw, dtype=np.float32).reshape(rows, dims)
            norms = np.linalg.norm(matrix, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            return cls(
                version, scored, scoreless, matrix / norms, np.asarray(starts, np.intp), dims
            )
        flat = array("f", raw)
        plain = [_normalise(flat[i * dims : (i + 1) * dims]) for i in range(rows)]
        return cls(version, scored, scoreless, plain, starts, dims)

    def scores(self, query: Sequence[float]) -> Any:
        """Cosine similarity of each scored key (max over its vectors), in key order
        (a numpy array when numpy is installed, else a list)."""
        if not self.scored_keys:
            return np.zeros(0, np.float32) if HAVE_NUMPY else []
        if len(query) != self.dims:
            raise StoreInputError(
                f"the query embedding has {len(query)} dimensions, the index {self.dims}"
            )
        if HAVE_NUMPY:
            q = np.asarray(query, dtype=np.float32)
            norm = float(np.linalg.norm(q))
            return np.maximum.reduceat(_products(self.matrix, q / norm if norm else q), self.starts)
        q_unit = _normalise(query)
        sims_py = [sum(a * b for a, b in zip(row, q_unit, strict=True)) for row in self.matrix]
        bounds = [*self.starts, len(sims_py)]
        return [max(sims_py[bounds[i] : bounds[i + 1]]) for i in range(len(self.starts))]


@dataclass(slots=True)
class MergedVectors:
    """The vectors of the namespaces of one search scope as one matrix (numpy only): one
    matrix-vector product per search instead of one per namespace. Valid while every
    part is the very :class:`NamespaceVectors` object it was built from (a namespace that
    changes gets a new one).

    Example:
        >>> a = NamespaceVectors.build("1", [("x", pack_vectors([[1.0, 0.0]], dims=2)[0])], dims=2)
        >>> b = NamespaceVectors.build("1", [("y", pack_vectors([[0.0, 1.0]], dims=2)[0])], dims=2)
        >>> merged = MergedVectors.build((a, b))
        >>> merged.matches((a, b)), [round(float(s), 2) for s in merged.scores([1.0, 1.0])]
        (True, [0.71, 0.71])
    """

    parts: tuple[NamespaceVectors, ...]
    matrix: Any
    starts: Any

    @classmethod
    def build(cls, parts: Sequence[NamespaceVectors]) -> MergedVectors:
        scored = [p for p in parts if p.scored_keys]
        offsets = np.cumsum([0, *(len(p.matrix) for p in scored)])
        matrix = (
            np.concatenate([p.matrix for p in scored])
            if scored
            else np.zeros((0, parts[0].dims if parts else 0), np.float32)
        )
        starts = (
            np.concatenate([p.starts + off for p, off in zip(scored, offsets, strict=False)])
            if scored
            else np.zeros(0, np.intp)
        )
        return cls(tuple(parts), matrix, starts)

    @staticmethod
    def fits(parts: Sequence[NamespaceVectors]) -> bool:
        """Worth building: several namespaces, small enough to copy."""
        size = sum(len(p.matrix) * p.dims * 4 for p in parts if p.scored_keys)
        return HAVE_NUMPY and len(parts) > 1 and size <= MAX_MERGED_BYTES

    def matches(self, parts: Sequence[NamespaceVectors]) -> bool:
        return len(parts) == len(self.parts) and all(
            a is b for a, b in zip(parts, self.parts, strict=True)
        )

    def scores(self, query: Sequence[float]) -> Any:
        """The scores of every scored key of every part, in order (as the parts' own
        :meth:`NamespaceVectors.scores`, concatenated)."""
        if not len(self.starts):
            return np.zeros(0, np.float32)
        q = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(q))
        return np.maximum.reduceat(_products(self.matrix, q / norm if norm else q), self.starts)


def _products(matrix: Any, query: Any) -> Any:
    """``matrix @ query`` in numpy's own single-threaded loop: a multi-threaded BLAS
    matrix-vector product is faster on an idle machine but 10-20x slower on a busy one
    (its threads wait for cores), and a store searches on busy machines."""
    return np.einsum("ij,j->i", matrix, query)


def _normalise(vector: Sequence[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector] if norm else [float(x) for x in vector]
