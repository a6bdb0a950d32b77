"""A deterministic, offline embedding for tests, demos and notebooks (no model, no network).

Each lower-cased word adds 1 to a dimension chosen by a stable hash (and 0.5 to a second
one), so texts sharing words are close in cosine similarity — enough to show semantic
search end to end with LangGraph's ``IndexConfig``.

Example:
    >>> embed = HashEmbeddings(dims=64)
    >>> a, b, c = embed.embed_documents(["coffee black", "black coffee please", "rainy Oslo"])
    >>> cosine(a, b) > cosine(a, c)
    True
    >>> len(a)
    64
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence

from langchain_core.embeddings import Embeddings

__all__ = ["HashEmbeddings", "cosine"]

_WORD = re.compile(r"\w+")


class HashEmbeddings(Embeddings):
    """Bag of hashed words, ``dims`` dimensions (deterministic across processes)."""

    def __init__(self, *, dims: int = 64) -> None:
        if dims < 2:
            raise ValueError("dims must be at least 2")
        self.dims = dims

    def _one(self, text: str) -> list[float]:
        vector = [0.0] * self.dims
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            vector[int.from_bytes(digest[:4], "big") % self.dims] += 1.0
            vector[int.from_bytes(digest[4:], "big") % self.dims] += 0.5
        return vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (0.0 when one is zero)."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
