"""``BaseRedisStore``: the sans-I/O core of :class:`RedisStore` and :class:`AsyncRedisStore`.

A batch is planned by generators that *yield* what they need — a round of Redis calls
(:class:`Call`, sent pipelined where the client allows) or an embedding request
(:class:`Embed`) — and receive the answers. The sync and async shells only drive the plan, so
both share every rule: validation before any write (bad input stores nothing), reads of a
batch before its writes (as ``InMemoryStore``), the last put of a key winning, TTL, filters,
ordering (newest ``updated_at`` first, then namespace and key) and exact vector search.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from langgraph.store.base import (
    BaseStore,
    GetOp,
    IndexConfig,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    get_text_at_path,
    tokenize_path,
)

from streamagent.errors import ConfigurationError
from streamagent.memory.store_core import (
    Call,
    Embed,
    Plan,
    StoreInputError,
    Wait,
    decode_doc,
    encode_value,
    join_namespace,
    namespace_matches,
    prefix_tags,
    split_namespace,
    validate_filter,
    validate_namespace,
)
from streamagent.memory.store_index import VectorSearchConfig
from streamagent.memory.store_schema import SchemaPlanner
from streamagent.memory.store_search import SearchPlanner, SnapshotCache
from streamagent.memory.store_vectors import pack_vectors

T = TypeVar("T")

__all__ = ["MAX_EXACT_VECTORS", "BaseRedisStore", "Call", "Embed", "Plan", "Wait"]

#: Default ceiling of vectors one semantic search scores exactly (about 0.4 GB of float32
#: at 1536 dims); above it the search fails with a clear error instead of crawling.
MAX_EXACT_VECTORS = 200_000
#: Registry entries whose namespace expired this long ago are pruned when listing.
_PRUNE_GRACE_MS = 60_000


@dataclass(slots=True)
class _Put:
    namespace: tuple[str, ...]
    key: str
    body: str | None  # JSON value; None deletes
    ttl_ms: int
    texts: list[str] = field(default_factory=list)


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _score(expiry_ms: float) -> str:
    return "inf" if math.isinf(expiry_ms) else str(int(expiry_ms) + 1000)


def _token() -> str:
    return os.urandom(8).hex()


class BaseRedisStore(SchemaPlanner, SearchPlanner, BaseStore):
    """Validation, key layout, planning and vector scoring shared by both Redis stores."""

    supports_ttl = True

    def __init__(
        self,
        *,
        key_prefix: str = "streamagent:store",
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        max_exact_vectors: int = MAX_EXACT_VECTORS,
        vector_search: VectorSearchConfig | None = None,
    ) -> None:
        if not key_prefix or any(c in key_prefix for c in "{}"):
            raise ConfigurationError(f"key_prefix must be non-empty without braces: {key_prefix!r}")
        if max_exact_vectors <= 0:
            raise ConfigurationError("max_exact_vectors must be positive")
        self.key_prefix = key_prefix
        self.registry_key = f"{key_prefix}:namespaces"
        self.ttl_config: TTLConfig | None = dict(ttl) if ttl else None  # type: ignore[assignment]
        default_ttl = (ttl or {}).get("default_ttl")
        if default_ttl is not None and default_ttl <= 0:
            raise ConfigurationError(f"default_ttl (minutes) must be positive: {default_ttl}")
        self.max_exact_vectors = max_exact_vectors
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings = None
        self._fields: list[tuple[str, Any]] = []
        if index:
            if int(index.get("dims", 0)) <= 0:
                raise ConfigurationError("IndexConfig needs a positive 'dims'")
            self.embeddings = ensure_embeddings(index.get("embed"))
            self._fields = [
                (p, p if p == "$" else tokenize_path(p)) for p in (index.get("fields") or ["$"])
            ]
        #: How semantic searches run; setup() resolves it into :attr:`search_path`.
        self.vector_search = vector_search or VectorSearchConfig()
        #: True when setup() found a server with a vector index (``FT._LIST`` answers).
        self.server_vector_index = False
        #: "server" when setup() chose the server's vector index, else "exact".
        self.search_path = "exact"
        #: True once setup() (or asetup()) has completed.
        self.is_set_up = False
        self._cache = SnapshotCache()

    # ------------------------------------------------------------------ convenience methods
    # BaseStore checks namespaces with its own (untyped) error first; ours comes first here.
    def get(self, namespace: tuple[str, ...], key: str, **kwargs: Any) -> Item | None:
        validate_namespace(namespace)
        return super().get(namespace, key, **kwargs)

    async def aget(self, namespace: tuple[str, ...], key: str, **kwargs: Any) -> Item | None:
        validate_namespace(namespace)
        return await super().aget(namespace, key, **kwargs)

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        validate_namespace(namespace)
        super().put(namespace, key, value, *args, **kwargs)

    async def aput(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        validate_namespace(namespace)
        await super().aput(namespace, key, value, *args, **kwargs)

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        validate_namespace(namespace)
        super().delete(namespace, key)

    async def adelete(self, namespace: tuple[str, ...], key: str) -> None:
        validate_namespace(namespace)
        await super().adelete(namespace, key)

    # ------------------------------------------------------------------ validation
    def _validate(self, ops: Sequence[Op]) -> None:
        for op in ops:
            if isinstance(op, GetOp):
                validate_namespace(op.namespace)
                self._check_key(op.key)
            elif isinstance(op, PutOp):
                self._validate_put(op)
            elif isinstance(op, SearchOp):
                self._validate_search(op)
            elif isinstance(op, ListNamespacesOp):
                for cond in op.match_conditions or ():
                    validate_namespace(cond.path, allow_empty=True)
                    if cond.match_type not in ("prefix", "suffix"):
                        raise StoreInputError(f"unknown match type {cond.match_type!r}")
                if op.max_depth is not None and op.max_depth <= 0:
                    raise StoreInputError(f"max_depth must be positive: {op.max_depth}")
                self._check_page(op.limit, op.offset)
            else:
                raise StoreInputError(f"unknown store operation {type(op).__name__}")

    @staticmethod
    def _check_key(key: Any) -> None:
        if not isinstance(key, str):
            raise StoreInputError(f"an item key is a string, not {type(key).__name__}")

    @staticmethod
    def _check_page(limit: Any, offset: Any) -> None:
        for name, value in (("limit", limit), ("offset", offset)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise StoreInputError(f"{name} must be a non-negative integer: {value!r}")

    def _validate_put(self, op: PutOp) -> None:
        validate_namespace(op.namespace)
        self._check_key(op.key)
        if op.ttl is not None and not (isinstance(op.ttl, int | float) and op.ttl > 0):
            raise StoreInputError(f"ttl is in minutes and must be positive: {op.ttl!r}")
        if op.index not in (None, False) and not (
            isinstance(op.index, list) and all(isinstance(p, str) for p in op.index)
        ):
            raise StoreInputError(f"index is False, None or a list of paths: {op.index!r}")

    def _validate_search(self, op: SearchOp) -> None:
        validate_namespace(op.namespace_prefix, allow_empty=True)
        validate_filter(op.filter)
        self._check_page(op.limit, op.offset)
        if op.query is not None:
            if not isinstance(op.query, str):
                raise StoreInputError("query is a string")
            if not self.embeddings:
                raise StoreInputError(
                    "a natural-language query needs an index: create the store with "
                    "index={'dims': ..., 'embed': ...}"
                )

    # ------------------------------------------------------------------ setup
    def plan_setup(self) -> Plan[None]:
        """After the version check: the storage schema, then the search path and index."""
        yield from self.plan_schema_check()
        yield from self.plan_vector_index()

    # ------------------------------------------------------------------ the batch plan
    def plan_batch(self, ops: Iterable[Op]) -> Plan[list[Result]]:
        """Plan a whole batch (validated first: bad input raises before any I/O)."""
        op_list = list(ops)
        self._validate(op_list)
        # values are encoded (and refused) here, before any I/O of the batch
        prepared = self._prepare_puts([op for op in op_list if isinstance(op, PutOp)])
        results: list[Result] = [None] * len(op_list)
        gets = [(i, op) for i, op in enumerate(op_list) if isinstance(op, GetOp)]
        if gets:
            yield from self._plan_gets(gets, results)
        names: list[tuple[str, ...]] | None = None
        for i, op in enumerate(op_list):
            if isinstance(op, SearchOp | ListNamespacesOp) and names is None:
                names = yield from self._plan_registry(prune=isinstance(op, ListNamespacesOp))
            if isinstance(op, SearchOp):
                results[i] = yield from self._plan_search(op, names or [])
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._plan_list(op, names or [])
        if prepared:
            yield from self._plan_puts(prepared)
        return results

    # ------------------------------------------------------------------ reads
    def _plan_gets(self, gets: list[tuple[int, GetOp]], results: list[Result]) -> Plan[None]:
        groups: dict[tuple[tuple[str, ...], bool], list[tuple[int, str]]] = defaultdict(list)
        for i, op in gets:
            groups[(tuple(op.namespace), bool(op.refresh_ttl))].append((i, op.key))
        plan = list(groups.items())
        calls = [self._read_call(ns, [k for _, k in members], ref) for (ns, ref), members in plan]
        replies = yield calls
        tops = []
        for ((ns, _), members), reply in zip(plan, replies, strict=True):
            tops.append(reply[0])
            for (i, key), raw in zip(members, reply[1:], strict=True):
                results[i] = None if raw is None else self._item(ns, decode_doc(key, raw))
        updates = self._registry_updates([ns for (ns, _), _ in plan], tops)
        if updates:
            yield updates

    def _plan_registry(self, *, prune: bool) -> Plan[list[tuple[str, ...]]]:
        now_ms = int(time.time() * 1000)
        calls = [
            Call(None, (), ("ZRANGEBYSCORE", self.registry_key, now_ms - _PRUNE_GRACE_MS, "+inf"))
        ]
        if prune:
            calls.append(
                Call(
                    None,
                    (),
                    ("ZREMRANGEBYSCORE", self.registry_key, "-inf", f"({now_ms - _PRUNE_GRACE_MS}"),
                )
            )
        replies = yield calls
        return [split_namespace(_text(name)) for name in replies[0]]

    def _plan_list(
        self, op: ListNamespacesOp, names: list[tuple[str, ...]]
    ) -> Plan[list[tuple[str, ...]]]:
        conditions = op.match_conditions or ()
        candidates = [
            ns
            for ns in names
            if all(namespace_matches(ns, c.match_type, tuple(c.path)) for c in conditions)
        ]
        live: list[tuple[str, ...]] = []
        if candidates:
            now_ms = int(time.time() * 1000)
            calls = [
                Call(None, (), ("ZCOUNT", self.keys_for(ns).idx, f"({now_ms}", "+inf"))
                for ns in candidates
            ]
            counts = yield calls
            live = [ns for ns, n in zip(candidates, counts, strict=True) if int(n) > 0]
        if op.max_depth is not None:
            live = sorted({ns[: op.max_depth] for ns in live})
        else:
            live = sorted(live)
        return live[op.offset : op.offset + op.limit]

    # ------------------------------------------------------------------ writes
    def _prepare_puts(self, ops: Sequence[PutOp]) -> list[_Put]:
        last: dict[tuple[tuple[str, ...], str], PutOp] = {}
        for op in ops:
            last[(tuple(op.namespace), op.key)] = op
        puts = []
        for (ns, key), op in last.items():
            body = None if op.value is None else encode_value(op.value)
            ttl_ms = 0 if op.ttl is None else max(1, round(op.ttl * 60_000))
            put = _Put(ns, key, body, ttl_ms)
            if op.value is not None and op.index is not False and self.embeddings:
                fields = (
                    self._fields if op.index is None else [(p, tokenize_path(p)) for p in op.index]
                )
                for _, path in fields:
                    put.texts.extend(get_text_at_path(dict(op.value), path))
            puts.append(put)
        return puts

    def _plan_puts(self, puts: Sequence[_Put]) -> Plan[None]:
        texts = [t for p in puts for t in p.texts]
        vectors: list[Sequence[float]] = []
        if texts:
            vectors = yield Embed(texts)
            if len(vectors) != len(texts):
                raise StoreInputError(
                    f"the embedder returned {len(vectors)} vectors for {len(texts)} texts"
                )
        blobs: list[list[bytes]] = []
        pos = 0
        for put in puts:  # every blob is built (and checked) before anything is written
            blobs.append(pack_vectors(vectors[pos : pos + len(put.texts)], dims=self.dims))
            pos += len(put.texts)
        now_us = time.time_ns() // 1000
        calls = []
        registered: dict[tuple[str, ...], float] = {}
        for put, vecs in zip(puts, blobs, strict=True):
            nk = self.keys_for(put.namespace)
            keys: tuple[str, ...] = (nk.idx, nk.ver, nk.doc(put.key), nk.vec(put.key))
            single = not self._cluster  # the script updates the registry too
            if single:
                keys += (self.registry_key,)
            ns_name = join_namespace(put.namespace) if single else ""
            if put.body is None:
                calls.append(Call("delete", keys, (put.key, _token(), ns_name, nk.vec_prefix)))
                continue
            tags = prefix_tags(put.namespace) if vecs else ""
            args = (put.key, put.ttl_ms, now_us, f"{now_us}\n{put.body}", _token(), ns_name,
                    nk.vec_prefix, tags, len(vecs), *vecs)  # fmt: skip
            calls.append(Call("put", keys, args))
            if not single:
                expiry = now_us / 1000 + put.ttl_ms if put.ttl_ms else math.inf
                registered[put.namespace] = max(expiry, registered.get(put.namespace, 0.0))
        # Cluster: the registry lives in another slot; its entry rides in the same round trip
        # (a client-clock expiry: listings check the namespace itself, and stale entries are
        # pruned a minute after expiry)
        calls += [
            Call(None, (), ("ZADD", self.registry_key, "GT", _score(at), join_namespace(ns)))
            for ns, at in registered.items()
        ]
        yield calls
        for put in puts:
            self._cache.forget(self.keys_for(put.namespace).tag)


def run_sync(plan: Plan[T], execute: Any, embed: Any) -> T:
    """Drive ``plan`` with blocking ``execute(calls)`` and ``embed(request)``."""
    try:
        request = next(plan)
        while True:
            if isinstance(request, Wait):
                time.sleep(request.seconds)
                reply = None
            else:
                reply = embed(request) if isinstance(request, Embed) else execute(request)
            request = plan.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def run_async(plan: Plan[T], execute: Any, embed: Any) -> T:
    """Drive ``plan`` with awaitable ``execute(calls)`` and ``embed(request)``."""
    try:
        request = next(plan)
        while True:
            if isinstance(request, Wait):
                await asyncio.sleep(request.seconds)
                reply = None
            else:
                reply = await (embed(request) if isinstance(request, Embed) else execute(request))
            request = plan.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
