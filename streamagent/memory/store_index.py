"""Semantic search through the server's own vector index (no I/O: plans and reply parsing).

Servers with a query engine — Redis 8 with its query engine, Redis Stack, any Redis >= 7.1 or
Valkey with the RediSearch module — index the store's vector hashes (``P:v:{P:E}:<i>:<key>``,
see :mod:`streamagent.memory.store_core`) with::

    FT.CREATE P:vectors ON HASH PREFIX 1 P:v: SCHEMA
        vec VECTOR FLAT 6 TYPE FLOAT32 DIM <dims> DISTANCE_METRIC COSINE
        pfx TAG SEPARATOR ,

``FLAT`` is exact (the server compares every vector in scope), so both search paths rank
the same items the same way. The index follows every write by itself (the hashes are
written, deleted and expired by the store's scripts). A search asks the index for the ``K``
nearest vectors under the namespace prefix (``@pfx:{<tag>}``), keeps each item's best
vector (max-pooling, as the exact path), reads the items themselves from Redis (an item
deleted or expired since is skipped; filters are applied to the fresh value), and asks for
four times more vectors until the page is full or the scope is exhausted. Ties are broken by
(namespace, key), as on the exact path; results whose distance equals the last one returned
are held back until a larger ``K`` shows all of them.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import IndexConfig, SearchOp

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory.store_core import (
    Call,
    CompiledFilter,
    Doc,
    NamespaceKeys,
    Plan,
    Wait,
    decode_doc,
    prefix_tag,
    split_namespace,
    unescape,
)

__all__ = [
    "SEARCH_PATHS",
    "ServerIndexPlanner",
    "VectorSearchConfig",
    "Wait",
    "parse_ft_search",
    "parse_pairs",
]

#: ``"auto"``: the server's index when setup() finds one (and the client is not a Cluster
#: client), else exact; ``"exact"``: always the client-side exact path; ``"server"``: the
#: server's index, and setup() fails where there is none.
SEARCH_PATHS = ("auto", "exact", "server")


@dataclass(frozen=True, kw_only=True, slots=True)
class VectorSearchConfig:
    """How semantic searches run (keyword-only; units in the names).

    Example:
        >>> VectorSearchConfig(path="server").path
        'server'
    """

    #: one of :data:`SEARCH_PATHS`
    path: str = "auto"
    #: setup() waits this long for the server to index existing vectors
    index_build_timeout_seconds: float = 60.0
    #: the server's own per-query timeout (``FT.SEARCH ... TIMEOUT``; 0: none). A server
    #: that times out may answer with partial results, so the default is none.
    query_timeout_milliseconds: int = 0
    #: the most vectors one index query asks for (RediSearch's ``MAXSEARCHRESULTS`` is
    #: 10,000 in Redis Stack); a search that needs more runs on the exact path
    max_server_results: int = 10_000

    def __post_init__(self) -> None:
        if self.path not in SEARCH_PATHS:
            raise ConfigurationError(
                f"vector search path must be one of {', '.join(SEARCH_PATHS)}: {self.path!r}"
            )
        if self.index_build_timeout_seconds <= 0 or self.query_timeout_milliseconds < 0:
            raise ConfigurationError("vector search timeouts must be positive")
        if self.max_server_results < 1:
            raise ConfigurationError("max_server_results must be positive")


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def parse_pairs(reply: Any) -> dict[str, Any]:
    """A RESP2 flat ``[k, v, ...]`` list or a RESP3 map as a dict with ``str`` keys."""
    if isinstance(reply, Mapping):
        return {_text(k): v for k, v in reply.items()}
    items = list(reply or [])
    return {_text(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _flatten(reply: Any) -> dict[str, str]:
    """Scalar fields of a nested FT.INFO entry (RESP2 lists or RESP3 maps), outermost first:
    ``dim`` of RediSearch and ``dimensions`` (nested under ``index``) of valkey-search
    both surface. A one-element list of scalars (``prefixes``) becomes that scalar."""
    out: dict[str, str] = {}
    stack = [parse_pairs(reply) if isinstance(reply, Mapping | list) else {}]
    while stack:
        for key, value in stack.pop(0).items():
            if isinstance(value, list) and len(value) == 1 and not isinstance(value[0], list):
                value = value[0]  # noqa: PLW2901 - unwrap a single prefix
            if isinstance(value, Mapping) or (isinstance(value, list) and len(value) % 2 == 0):
                stack.append(parse_pairs(value))
            elif not isinstance(value, list):
                out.setdefault(key.lower(), _text(value))
    return out


def parse_ft_search(reply: Any, field: str) -> tuple[int, list[tuple[str, float]]]:
    """``(total, [(document id, float(field)), ...])`` of an ``FT.SEARCH`` reply (RESP2 or 3)."""
    rows: list[tuple[str, float]] = []
    if isinstance(reply, Mapping):
        top = parse_pairs(reply)
        for row in top.get("results") or []:
            entry = parse_pairs(row)
            attrs = parse_pairs(entry.get("extra_attributes") or {})
            rows.append((_text(entry["id"]), float(_text(attrs[field]))))
        warnings = [_text(w) for w in top.get("warning") or []]
        if any("timeout" in w.lower() for w in warnings):
            raise MemoryUnavailable(f"the server's vector index timed out: {warnings}")
        return int(top.get("total_results") or 0), rows
    total = int(reply[0])
    for i in range(1, len(reply) - 1, 2):
        attrs = parse_pairs(reply[i + 1])
        rows.append((_text(reply[i]), float(_text(attrs[field]))))
    return total, rows


Hit = tuple[float, tuple[str, ...], str]  # distance, namespace, key
Ranked = tuple[tuple[tuple[str, ...], Doc], float | None]


class ServerIndexPlanner:
    """Base of the Redis stores: setting up and searching the server's vector index."""

    key_prefix: str
    index_config: IndexConfig | None
    vector_search: VectorSearchConfig
    server_vector_index: bool
    _cluster: bool = False
    #: "exact" or "server", decided by setup()
    search_path: str = "exact"

    @property
    def index_name(self) -> str:
        """The name of this store's vector index on the server."""
        return f"{self.key_prefix}:vectors"

    def _read_call(self, ns: tuple[str, ...], keys: Sequence[str], refresh: bool) -> Call:
        raise NotImplementedError

    def keys_for(self, namespace: tuple[str, ...]) -> NamespaceKeys:
        raise NotImplementedError

    def _plan_docs(
        self, pairs: Sequence[tuple[tuple[str, ...], str]]
    ) -> Plan[dict[tuple[tuple[str, ...], str], Doc]]:
        """The live documents of ``(namespace, key)`` pairs (absent: deleted or expired),
        without refreshing TTLs: one ``MGET`` on a single node, one per namespace (its
        slot) on a Cluster."""
        if not pairs:
            return {}
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for ns, key in pairs:
            groups[ns].append(key)
        names = [(ns, key) for ns, keys in groups.items() for key in keys]
        docs = [self.keys_for(ns).doc(key) for ns, key in names]
        if self._cluster:
            replies = yield [
                Call(None, (), ("MGET", *(self.keys_for(ns).doc(k) for k in keys)))
                for ns, keys in groups.items()
            ]
            raws = [raw for reply in replies for raw in reply]
        else:
            raws = (yield [Call(None, (), ("MGET", *docs))])[0]
        return {
            (ns, key): decode_doc(key, raw)
            for (ns, key), raw in zip(names, raws, strict=True)
            if raw is not None
        }

    # ------------------------------------------------------------------ setup
    def plan_vector_index(self) -> Plan[None]:
        """Detect a query engine (``FT._LIST``), pick the search path, create or check the
        index, and wait until it has indexed what is already stored."""
        (listed,) = yield [Call(None, (), ("FT._LIST",), errors_as_values=True)]
        self.server_vector_index = not isinstance(listed, Exception)
        wanted = self.vector_search.path
        dims = int(self.index_config["dims"]) if self.index_config else 0
        if wanted == "server" and not self.server_vector_index:
            raise ConfigurationError(
                "vector search path 'server' needs a server with a vector index (Redis 8 "
                "with its query engine, Redis Stack, or the RediSearch module): FT._LIST "
                f"failed ({listed})"
            )
        if wanted == "server" and (self._cluster or not dims):
            raise ConfigurationError(
                "vector search path 'server' needs an index config (dims) and a "
                "single-node client (the query engine's Cluster coordinator is not supported)"
            )
        if wanted == "exact" or not self.server_vector_index or self._cluster or not dims:
            self.search_path = "exact"
            return
        yield from self._plan_ensure_index(dims)
        self.search_path = "server"

    def _plan_ensure_index(self, dims: int) -> Plan[None]:
        (info,) = yield [Call(None, (), ("FT.INFO", self.index_name), errors_as_values=True)]
        if isinstance(info, Exception):
            yield [
                Call(
                    None,
                    (),
                    ("FT.CREATE", self.index_name, "ON", "HASH", "PREFIX", "1",
                     f"{self.key_prefix}:v:", "SCHEMA",
                     "vec", "VECTOR", "FLAT", "6", "TYPE", "FLOAT32", "DIM", str(dims),
                     "DISTANCE_METRIC", "COSINE",
                     "pfx", "TAG", "SEPARATOR", ","),
                )
            ]  # fmt: skip
        else:
            self._check_index(parse_pairs(info), dims)
        waited = 0.0
        while True:
            (info,) = yield [Call(None, (), ("FT.INFO", self.index_name))]
            if int(_text(parse_pairs(info).get("indexing", 0))) == 0:
                return
            if waited >= self.vector_search.index_build_timeout_seconds:
                raise MemoryUnavailable(
                    f"the server is still indexing the store's vectors ({self.index_name}) "
                    f"after {waited:.0f} s; call setup() again later"
                )
            yield Wait(0.05)
            waited += 0.05

    def _check_index(self, info: dict[str, Any], dims: int) -> None:
        attrs = [_flatten(a) for a in info.get("attributes") or []]
        vec = next((a for a in attrs if a.get("attribute") == "vec"), {})
        definition = _flatten(info.get("index_definition") or [])
        found = {
            "key type": definition.get("key_type", ""),
            "prefixes": definition.get("prefixes", ""),
            "algorithm": vec.get("algorithm", vec.get("name", "")),
            "dims": vec.get("dim", vec.get("dimensions", "")),
            "metric": vec.get("distance_metric", ""),
            "pfx tag": any(a.get("attribute") == "pfx" for a in attrs),
        }
        expected = {
            "key type": "HASH",
            "prefixes": f"{self.key_prefix}:v:",
            "algorithm": "FLAT",
            "dims": str(dims),
            "metric": "COSINE",
            "pfx tag": True,
        }
        if found != expected:
            raise ConfigurationError(
                f"the server's index {self.index_name!r} does not fit this store: it has "
                f"{found}, the store needs {expected}. Drop it (FT.DROPINDEX "
                f"{self.index_name}; the data stays) or use another key_prefix"
            )

    # ------------------------------------------------------------------ search
    def _knn_call(self, prefix: tuple[str, ...], blob: bytes, k: int) -> Call:
        scope = f"@pfx:{{{prefix_tag(prefix)}}}" if prefix else "*"
        return Call(
            None,
            (),
            ("FT.SEARCH", self.index_name, f"{scope}=>[KNN $K @vec $q AS __dist]",
             "PARAMS", "4", "K", str(k), "q", blob, "RETURN", "1", "__dist", "LIMIT", "0", str(k),
             "TIMEOUT", str(self.vector_search.query_timeout_milliseconds), "DIALECT", "2"),
        )  # fmt: skip

    def _parse_id(self, doc_id: str) -> tuple[tuple[str, ...], str] | None:
        head = f"{self.key_prefix}:v:{{{self.key_prefix}:"
        if not doc_id.startswith(head):
            return None
        close = doc_id.index("}", len(head))
        _, _, key = doc_id[close + 2 :].partition(":")  # "}:<i>:<key>"
        return split_namespace(unescape(doc_id[len(head) : close])), key

    def _plan_knn(
        self, prefix: tuple[str, ...], blob: bytes, k: int
    ) -> Plan[tuple[list[Hit], bool] | None]:
        """The best vectors under ``prefix`` by (distance, namespace, key) and whether the
        scope is exhausted; None when the server truncated the answer."""
        (reply,) = yield [self._knn_call(prefix, blob, k)]
        total, rows = parse_ft_search(reply, "__dist")
        if len(rows) < min(total, k):
            return None
        hits: list[Hit] = []
        for doc_id, dist in rows:
            parsed = self._parse_id(doc_id)
            if parsed is not None and parsed[0][: len(prefix)] == prefix and math.isfinite(dist):
                hits.append((dist, parsed[0], parsed[1]))
        hits.sort()
        return hits, len(rows) < k

    def _plan_server_ranked(
        self, op: SearchOp, query: Sequence[float], wanted: int
    ) -> Plan[tuple[list[Ranked], set[tuple[tuple[str, ...], str]]] | None]:
        """The first ``wanted`` live items (passing the filter) by score, and every scored
        item seen when the scope was exhausted (else an empty set); None: the search needs
        more than ``max_server_results`` vectors (the caller goes exact)."""
        blob = array("f", query).tobytes()
        prefix = tuple(op.namespace_prefix)
        check = CompiledFilter(op.filter) if op.filter else None
        found: list[Ranked] = []
        seen: set[tuple[tuple[str, ...], str]] = set()
        k = min(max(2 * wanted + 8, 16), self.vector_search.max_server_results)
        while True:
            answer = yield from self._plan_knn(prefix, blob, k)
            if answer is None:
                return None
            hits, exhausted = answer
            if not exhausted and hits:  # a tie at the cut may continue past K
                hits = [h for h in hits if h[0] < hits[-1][0]]
            fresh: list[Hit] = []
            for hit in hits:
                if (hit[1], hit[2]) not in seen:
                    seen.add((hit[1], hit[2]))
                    fresh.append(hit)
            found += yield from self._plan_read_ranked(fresh, check)
            if exhausted:
                return found[:wanted], seen
            if len(found) >= wanted:
                return found[:wanted], set()
            if k >= self.vector_search.max_server_results:
                return None
            k = min(4 * k, self.vector_search.max_server_results)

    def _plan_read_ranked(
        self, hits: list[Hit], check: CompiledFilter | None
    ) -> Plan[list[Ranked]]:
        docs = yield from self._plan_docs([(ns, key) for _, ns, key in hits])
        out: list[Ranked] = []
        for dist, ns, key in hits:
            doc = docs.get((ns, key))
            if doc is not None and (check is None or check(doc.value)):
                out.append(((ns, doc), 1.0 - dist))
        return out
