"""Search planning of the Redis stores (no I/O): namespace snapshots, filters, vector ranking.

A client keeps a *snapshot* of each namespace it searched — its decoded items and, with an
index, its vectors — tagged with the namespace's version token. A search first reads the
tokens of the namespaces in scope (one pipelined round trip) and reloads only the namespaces
that changed, so repeated searches cost a round trip plus in-process filtering and scoring.
Items with a TTL are re-checked against Redis before they are returned (a snapshot may hold
an item that expired since), so expired items never appear; items without a TTL change only
through writes, which renew the token.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.store.base import IndexConfig, Item, SearchItem, SearchOp

from streamagent.memory.store_core import (
    Call,
    CompiledFilter,
    Doc,
    Embed,
    NamespaceKeys,
    Plan,
    StoreInputError,
    decode_doc,
    from_micros,
    join_namespace,
)
from streamagent.memory.store_index import ServerIndexPlanner
from streamagent.memory.store_vectors import HAVE_NUMPY, MergedVectors, NamespaceVectors

if HAVE_NUMPY:
    import numpy as np

__all__ = ["MAX_CACHED_ITEMS", "NamespaceSnapshot", "SearchPlanner"]

#: Ranked results produced by a partial sort before a full sort is needed.
TOP_FIRST = 64
#: Items kept decoded in a client's snapshot cache (least recently loaded namespaces go first).
MAX_CACHED_ITEMS = 500_000

Entry = tuple[tuple[str, ...], Doc]


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@dataclass(slots=True)
class NamespaceSnapshot:
    """The live items of one namespace at one version (newest first), with equality indexes
    built on first use (field -> value -> items, in order)."""

    version: str | None
    docs: list[Doc]
    postings: dict[str, dict[Any, list[Doc]]] = field(default_factory=dict)

    def matching(self, check: CompiledFilter) -> list[Doc]:
        """The items passing ``check``; an equality on a scalar is answered by an index."""
        if not check.equal:
            return [d for d in self.docs if check(d.value)]
        name, expected = check.equal[0]
        index = self.postings.get(name)
        if index is None:
            index = {}
            for doc in self.docs:
                actual = doc.value.get(name)
                if isinstance(actual, Hashable):
                    index.setdefault(actual, []).append(doc)
            self.postings[name] = index
        if not isinstance(expected, Hashable):
            return [d for d in self.docs if check(d.value)]
        return [d for d in index.get(expected, ()) if check(d.value)]


class SnapshotCache:
    """Thread-safe, bounded map: hash tag -> snapshot / vectors."""

    def __init__(self, max_items: int = MAX_CACHED_ITEMS) -> None:
        self.max_items = max_items
        self.docs: OrderedDict[str, NamespaceSnapshot] = OrderedDict()
        self.vectors: dict[str, NamespaceVectors] = {}
        #: the last multi-namespace scope searched, as one matrix
        self.merged: MergedVectors | None = None
        self.lock = threading.Lock()
        self._count = 0

    def put_docs(self, tag: str, snapshot: NamespaceSnapshot) -> None:
        with self.lock:
            old = self.docs.pop(tag, None)
            self._count += len(snapshot.docs) - (len(old.docs) if old else 0)
            self.docs[tag] = snapshot
            while self._count > self.max_items and len(self.docs) > 1:
                _, evicted = self.docs.popitem(last=False)
                self._count -= len(evicted.docs)

    def forget(self, tag: str) -> None:
        with self.lock:
            old = self.docs.pop(tag, None)
            self._count -= len(old.docs) if old else 0
            self.vectors.pop(tag, None)

    def clear(self) -> None:
        with self.lock:
            self.docs.clear()
            self.vectors.clear()
            self.merged = None
            self._count = 0


class SearchPlanner(ServerIndexPlanner):
    """Base of :class:`~streamagent.memory.store_base.BaseRedisStore`: keys, reads, searches."""

    key_prefix: str
    registry_key: str
    index_config: IndexConfig | None
    max_exact_vectors: int
    _cache: SnapshotCache
    #: set by the shells: on a Cluster, multi-key commands stay inside one namespace
    _cluster: bool = False

    # ------------------------------------------------------------------ keys
    def keys_for(self, namespace: tuple[str, ...]) -> NamespaceKeys:
        """The Redis key names of ``namespace`` (all share one hash tag)."""
        return NamespaceKeys.of(self.key_prefix, namespace)

    @property
    def dims(self) -> int:
        return int(self.index_config["dims"]) if self.index_config else 0

    def _embed_request(self, texts: list[str]) -> Embed:
        return Embed(texts, query=True)

    def _read_call(self, ns: tuple[str, ...], keys: Sequence[str], refresh: bool) -> Call:
        nk = self.keys_for(ns)
        redis_keys = [nk.idx, nk.ver]
        for key in keys:
            redis_keys += [nk.doc(key), nk.vec(key)]
        return Call("read", tuple(redis_keys), ("1" if refresh else "0", nk.vec_prefix, *keys))

    def _registry_updates(
        self, namespaces: Sequence[tuple[str, ...]], tops: Sequence[Any]
    ) -> list[Call]:
        calls = []
        for ns, top in zip(namespaces, tops, strict=True):
            if top is not None and top is not False:
                score = _text(top)
                calls.append(
                    Call(None, (), ("ZADD", self.registry_key, "GT", score, join_namespace(ns)))
                )
        return calls

    @staticmethod
    def _item(ns: tuple[str, ...], doc: Doc) -> Item:
        return Item(
            value=doc.value,
            key=doc.key,
            namespace=ns,
            created_at=from_micros(doc.created_us),
            updated_at=from_micros(doc.updated_us),
        )

    @staticmethod
    def _search_item(ns: tuple[str, ...], doc: Doc, score: float | None) -> SearchItem:
        return SearchItem(
            namespace=ns,
            key=doc.key,
            value=doc.value,
            created_at=from_micros(doc.created_us),
            updated_at=from_micros(doc.updated_us),
            score=score,
        )

    def _plan_refresh(self, chosen: Sequence[tuple[tuple[str, ...], Doc]]) -> Plan[None]:
        groups: dict[tuple[str, ...], list[str]] = defaultdict(list)
        for ns, doc in chosen:
            if doc.ttl_ms > 0:
                groups[ns].append(doc.key)
        if not groups:
            return
        replies = yield [self._read_call(ns, keys, True) for ns, keys in groups.items()]
        updates = self._registry_updates(list(groups), [r[0] for r in replies])
        if updates:
            yield updates

    def _plan_versions(self, namespaces: Sequence[tuple[str, ...]]) -> Plan[list[str | None]]:
        if not namespaces:
            return []
        keys = [self.keys_for(ns).ver for ns in namespaces]
        if self._cluster:  # one slot per namespace: one GET each (pipelined per node)
            replies = yield [Call(None, (), ("GET", key)) for key in keys]
        else:
            replies = (yield [Call(None, (), ("MGET", *keys))])[0]
        return [None if r is None else _text(r) for r in replies]

    def _plan_snapshots(
        self, namespaces: Sequence[tuple[str, ...]], versions: Sequence[str | None]
    ) -> Plan[list[NamespaceSnapshot]]:
        cache = self._cache
        out: list[NamespaceSnapshot | None] = []
        stale: list[int] = []
        with cache.lock:
            for i, (ns, version) in enumerate(zip(namespaces, versions, strict=True)):
                snap = cache.docs.get(self.keys_for(ns).tag)
                if version is None:
                    out.append(NamespaceSnapshot(None, []))
                elif snap is not None and snap.version == version:
                    out.append(snap)
                else:
                    out.append(None)
                    stale.append(i)
        if stale:
            keys = [self.keys_for(namespaces[i]) for i in stale]
            replies = yield [Call("list", (nk.idx, nk.ver), (nk.doc_prefix,)) for nk in keys]
            for i, nk, flat in zip(stale, keys, replies, strict=True):
                docs = [decode_doc(_text(flat[j]), flat[j + 1]) for j in range(1, len(flat), 2)]
                docs.sort(key=lambda d: d.key)
                docs.sort(key=lambda d: d.updated_us, reverse=True)
                snap = NamespaceSnapshot(None if flat[0] is None else _text(flat[0]), docs)
                cache.put_docs(nk.tag, snap)
                out[i] = snap
        return [s for s in out if s is not None]

    def _plan_live(
        self, ranked: Iterator[tuple[Entry, float | None]], wanted: int
    ) -> Plan[list[tuple[Entry, float | None]]]:
        """The first ``wanted`` of ``ranked`` that still exist: items with a TTL are checked
        against Redis (fresh copies returned), the others come from the snapshot."""
        found: list[tuple[Entry, float | None]] = []
        while len(found) < wanted:
            chunk = [r for _, r in zip(range(wanted - len(found)), ranked, strict=False)]
            if not chunk:
                break
            fresh = yield from self._plan_docs(
                [(ns, doc.key) for (ns, doc), _ in chunk if doc.ttl_ms > 0]
            )
            for (ns, doc), score in chunk:
                if doc.ttl_ms > 0:
                    if (latest := fresh.get((ns, doc.key))) is None:
                        continue
                    doc = latest  # noqa: PLW2901 - the fresh copy replaces the snapshot's
                found.append(((ns, doc), score))
        return found

    @staticmethod
    def _recent_first(entries: list[Entry]) -> list[Entry]:
        entries.sort(key=lambda e: (e[0], e[1].key))
        entries.sort(key=lambda e: e[1].updated_us, reverse=True)
        return entries

    def _plan_search(self, op: SearchOp, names: list[tuple[str, ...]]) -> Plan[list[SearchItem]]:
        prefix = tuple(op.namespace_prefix)
        namespaces = sorted(ns for ns in names if ns[: len(prefix)] == prefix)
        if op.query is not None:
            return (yield from self._plan_semantic(op, namespaces))
        versions = yield from self._plan_versions(namespaces)
        snaps = yield from self._plan_snapshots(namespaces, versions)
        check = CompiledFilter(op.filter or {})
        entries: list[Entry] = [
            (ns, d) for ns, s in zip(namespaces, snaps, strict=True) for d in s.matching(check)
        ]
        if len(snaps) > 1:
            self._recent_first(entries)
        live = yield from self._plan_live(((e, None) for e in entries), op.offset + op.limit)
        chosen = [e for e, _ in live[op.offset :]]
        if op.refresh_ttl:
            yield from self._plan_refresh(chosen)
        return [self._search_item(ns, doc, None) for ns, doc in chosen]

    # ------------------------------------------------------------------ semantic search
    def _plan_vectors(
        self, namespaces: Sequence[tuple[str, ...]], versions: Sequence[str | None]
    ) -> Plan[list[NamespaceVectors]]:
        tags = [self.keys_for(ns) for ns in namespaces]
        cache = self._cache
        stale = []
        with cache.lock:
            for nk, version in zip(tags, versions, strict=True):
                cached = cache.vectors.get(nk.tag)
                if cached is None or version is None or cached.version != version:
                    stale.append(nk)
        if stale:
            replies = yield [Call("vectors", (nk.idx, nk.ver), (nk.vec_prefix,)) for nk in stale]
            with cache.lock:
                for nk, flat in zip(stale, replies, strict=True):
                    version = None if flat[0] is None else _text(flat[0])
                    pairs = [(_text(flat[j]), flat[j + 1]) for j in range(1, len(flat), 2)]
                    cache.vectors[nk.tag] = NamespaceVectors.build(version, pairs, dims=self.dims)
        with cache.lock:
            return [cache.vectors[nk.tag] for nk in tags]

    def _ranked(
        self,
        namespaces: Sequence[tuple[str, ...]],
        caches: Sequence[NamespaceVectors],
        query: list[float],
    ) -> Iterator[tuple[tuple[str, ...], str, float]]:
        """(namespace, key, score), best first."""
        total = sum(len(c.matrix) for c in caches)
        if total > self.max_exact_vectors:
            raise StoreInputError(
                f"this search would score {total} vectors, above max_exact_vectors="
                f"{self.max_exact_vectors}; narrow namespace_prefix or raise the limit"
            )
        if HAVE_NUMPY:
            yield from self._ranked_numpy(namespaces, caches, query)
            return
        owners: list[tuple[int, str]] = []
        scores: list[float] = []
        for n, cache in enumerate(caches):
            owners.extend((n, key) for key in cache.scored_keys)
            scores.extend(cache.scores(query))
        for i in sorted(range(len(scores)), key=lambda i: -scores[i]):
            n, key = owners[i]
            yield namespaces[n], key, scores[i]

    def _ranked_numpy(
        self,
        namespaces: Sequence[tuple[str, ...]],
        caches: Sequence[NamespaceVectors],
        query: list[float],
    ) -> Iterator[tuple[tuple[str, ...], str, float]]:
        """Best first, ties in (namespace, key) order (the order of the concatenation): the
        best ``TOP_FIRST`` (and every item tied with the last of them) by partial sort;
        the rest, if asked for, by a full sort."""
        merged = self._cache.merged
        if (merged is None or not merged.matches(caches)) and MergedVectors.fits(caches):
            merged = self._cache.merged = MergedVectors.build(caches)
        if merged is not None and merged.matches(caches):
            scores = merged.scores(query)
        else:
            scores = np.concatenate([c.scores(query) for c in caches] or [np.zeros(0)])
        if not scores.size:
            return
        ends = np.cumsum([len(c.scored_keys) for c in caches])

        def owner(index: int) -> tuple[tuple[str, ...], str, float]:
            n = int(np.searchsorted(ends, index, side="right"))
            start = int(ends[n - 1]) if n else 0
            return namespaces[n], caches[n].scored_keys[index - start], float(scores[index])

        first = min(TOP_FIRST, len(scores))
        cut = scores[np.argpartition(-scores, first - 1)[first - 1]]
        head = np.flatnonzero(scores >= cut)  # ascending index: ties stay in order
        head = head[np.argsort(-scores[head], kind="stable")]
        for index in head.tolist():
            yield owner(index)
        for index in np.argsort(-scores, kind="stable").tolist():
            if scores[index] < cut:
                yield owner(index)

    def _plan_semantic(
        self, op: SearchOp, namespaces: list[tuple[str, ...]]
    ) -> Plan[list[SearchItem]]:
        """The full ranking is the scored items (best first) then the unscored ones (newest
        first); the page is its ``[offset : offset + limit]``. Through the server's index
        when setup() chose it (and the query is not a zero vector), else exact."""
        assert op.query is not None
        embedded = yield self._embed_request([op.query])
        query = list(embedded[0])
        if len(query) != self.dims:
            raise StoreInputError(
                f"the query embedding has {len(query)} dimensions, the index {self.dims}"
            )
        wanted = op.offset + op.limit
        served = None
        if self.search_path == "server" and any(query):
            served = yield from self._plan_server_ranked(op, query, wanted)
        if served is not None:
            kept, seen = served
            rest: list[Entry] = []
            if len(kept) < wanted:
                rest = yield from self._plan_unscored(op, namespaces, seen)
        else:
            kept, rest = yield from self._plan_exact(op, namespaces, query, wanted)
        if rest and len(kept) < wanted:
            kept += yield from self._plan_live(((e, None) for e in rest), wanted - len(kept))
        kept = kept[op.offset :]
        if op.refresh_ttl:
            yield from self._plan_refresh([e for e, _ in kept])
        return [self._search_item(ns, d, s) for (ns, d), s in kept]

    def _plan_exact(
        self, op: SearchOp, namespaces: list[tuple[str, ...]], query: list[float], wanted: int
    ) -> Plan[tuple[list[tuple[Entry, float | None]], list[Entry]]]:
        """The first ``wanted`` scored items, and the unscored ones when they may be needed."""
        versions = yield from self._plan_versions(namespaces)
        caches = yield from self._plan_vectors(namespaces, versions)
        ranked = self._ranked(namespaces, caches, query)
        if op.filter:
            snaps = yield from self._plan_snapshots(namespaces, versions)
            check = CompiledFilter(op.filter)
            docs = {
                (ns, d.key): d
                for ns, s in zip(namespaces, snaps, strict=True)
                for d in s.matching(check)
            }
            scored = (
                ((ns, d), score) for ns, key, score in ranked if (d := docs.pop((ns, key), None))
            )
            kept = yield from self._plan_live(scored, wanted)
            # fewer than wanted: the ranking is exhausted and what is left has no vectors
            rest = self._recent_first([(ns, d) for (ns, _), d in docs.items()])
            return kept, rest if len(kept) < wanted else []
        kept = yield from self._plan_top(ranked, wanted)
        rest = []
        if len(kept) < wanted:
            rest = yield from self._plan_scoreless(namespaces, caches)
        return kept, rest

    def _plan_unscored(
        self,
        op: SearchOp,
        namespaces: list[tuple[str, ...]],
        scored: set[tuple[tuple[str, ...], str]],
    ) -> Plan[list[Entry]]:
        """The items in scope passing the filter that have no vector, newest first."""
        versions = yield from self._plan_versions(namespaces)
        snaps = yield from self._plan_snapshots(namespaces, versions)
        check = CompiledFilter(op.filter or {})
        return self._recent_first(
            [
                (ns, d)
                for ns, s in zip(namespaces, snaps, strict=True)
                for d in s.matching(check)
                if (ns, d.key) not in scored
            ]
        )

    def _plan_top(
        self, ranked: Iterator[tuple[tuple[str, ...], str, float]], wanted: int
    ) -> Plan[list[tuple[Entry, float | None]]]:
        """The first ``wanted`` ranked items that still exist (read from Redis)."""
        found: list[tuple[Entry, float | None]] = []
        while len(found) < wanted:
            chunk = [r for _, r in zip(range(wanted - len(found) + 8), ranked, strict=False)]
            if not chunk:
                break
            docs = yield from self._plan_docs([(ns, key) for ns, key, _ in chunk])
            for ns, key, score in chunk:
                if (doc := docs.get((ns, key))) is not None and len(found) < wanted:
                    found.append(((ns, doc), score))
        return found

    def _plan_scoreless(
        self,
        namespaces: Sequence[tuple[str, ...]],
        caches: Sequence[NamespaceVectors],
    ) -> Plan[list[Entry]]:
        pairs = [
            (ns, key) for ns, c in zip(namespaces, caches, strict=True) for key in c.scoreless_keys
        ]
        docs = yield from self._plan_docs(pairs)
        return self._recent_first([(ns, doc) for (ns, _), doc in docs.items()])
