"""``RedisStore``: LangGraph's long-term memory ``BaseStore`` on plain Redis (sync shell).

Example:
    >>> from streamagent.memory import RedisStore
    >>> with RedisStore.from_url("redis://127.0.0.1:6379/0") as store:  # doctest: +SKIP
    ...     store.setup()
    ...     store.put(("users", "alice"), "profile", {"name": "Alice", "age": 31})
    ...     store.get(("users", "alice"), "profile").value
    {'name': 'Alice', 'age': 31}
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio.cluster as aiocluster
from langgraph.store.base import Op, Result
from redis.exceptions import NoScriptError

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory._errors import check_server_version, describe_client
from streamagent.memory.store_base import BaseRedisStore, Call, Embed, run_sync
from streamagent.memory.store_lua import (
    DELETE_SCRIPT,
    LIST_SCRIPT,
    PUT_SCRIPT,
    READ_SCRIPT,
    VECTORS_SCRIPT,
)
from streamagent.memory.store_schema import MIGRATE_SCRIPT

__all__ = ["RedisStore", "check_reply", "store_error"]

logger = logging.getLogger(__name__)

SCRIPTS = {
    "put": PUT_SCRIPT,
    "delete": DELETE_SCRIPT,
    "read": READ_SCRIPT,
    "list": LIST_SCRIPT,
    "vectors": VECTORS_SCRIPT,
    "migrate": MIGRATE_SCRIPT,
}
SHAS = {name: hashlib.sha1(body.encode()).hexdigest() for name, body in SCRIPTS.items()}  # noqa: S324 - Redis names scripts by SHA-1
CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
}


def store_error(where: str, exc: BaseException) -> MemoryUnavailable:
    """A :class:`MemoryUnavailable` for a failed store round trip (nothing reported as saved)."""
    kind = "cannot reach" if isinstance(exc, redis.ConnectionError | OSError) else "failed at"
    return MemoryUnavailable(
        f"store operation {kind} Redis {where} ({type(exc).__name__}: {exc}); "
        "writes of this batch may be incomplete: retry the batch (puts are idempotent)"
    )


def check_reply(call: Call, reply: Any) -> Any:
    """A pipelined reply: a Redis error is raised unless the call takes errors as values."""
    if isinstance(reply, redis.ResponseError) and not (
        call.errors_as_values and not isinstance(reply, NoScriptError)
    ):
        raise reply
    return reply


def _token() -> str:
    return os.urandom(8).hex()


def check_client(client: Any) -> None:
    """Refuse clients that decode responses (the store reads binary vectors)."""
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None) or {}
    if getattr(client, "get_connection_kwargs", None) and not kwargs:
        kwargs = client.get_connection_kwargs()
    if kwargs.get("decode_responses"):
        raise ConfigurationError("the store needs a Redis client with decode_responses=False")


class RedisStore(BaseRedisStore):
    """LangGraph ``BaseStore`` on Redis >= 6.2, Valkey or Redis Cluster; core commands only.

    Items live under hierarchical namespaces; every key of a namespace shares one hash tag,
    so each write is one atomic script on one node. ``ttl={"default_ttl": minutes,
    "refresh_on_read": bool}`` (LangGraph's ``TTLConfig``) or ``put(..., ttl=minutes)`` make
    every key of an item expire together; expired items never appear in reads, searches or
    listings. ``index={"dims": ..., "embed": ..., "fields": [...]}`` (LangGraph's
    ``IndexConfig``) enables natural-language ``search(query=...)``: vectors are stored in
    Redis and ranked through the server's own vector index when :meth:`setup` finds one
    (``FT.SEARCH ... KNN``), else exactly in the client (numpy, up to ``max_exact_vectors``
    per search) — the same results either way; ``vector_search=VectorSearchConfig(...)``
    chooses. Async methods run the sync ones in a worker thread; :class:`AsyncRedisStore`
    is natively async.
    The constructor does no I/O; call :meth:`setup` once.

    Example:
        >>> import redis
        >>> store = RedisStore(redis.Redis(), key_prefix="app:store")
        >>> store.keys_for(("users", "alice")).doc("prefs")
        '{app:store:users.alice}:d:prefs'
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, **options: Any) -> None:
        super().__init__(**options)
        check_client(client)
        self.client = client
        self._where = describe_client(client)
        self._cluster = isinstance(client, redis.RedisCluster)

    @classmethod
    @contextmanager
    def from_url(cls, url: str, **options: Any) -> Iterator[RedisStore]:
        """A store on a new connection pool to ``url`` (closed on exit).

        2 s connect / 5 s read timeouts; ``connection_options={...}`` overrides redis-py
        arguments; other options go to the constructor. Call :meth:`setup` inside.

        Example:
            >>> with RedisStore.from_url("redis://127.0.0.1:6379/0") as store:  # doctest: +SKIP
            ...     store.setup()
        """
        connection = {**CONNECTION_DEFAULTS, **options.pop("connection_options", {})}
        client = redis.Redis.from_url(url, **connection)
        try:
            yield cls(client, **options)
        finally:
            client.close()

    def setup(self) -> None:
        """Check the server (Redis >= 6.2 or Valkey) and the storage schema, load the
        scripts, detect a server vector index and choose the search path (creating or
        checking the store's index on the server when it is used)."""
        try:
            info = self.client.info("server")
            if self._cluster:  # one entry per node
                info = (
                    next(iter(info.values()))
                    if isinstance(info, dict) and "redis_version" not in info
                    else info
                )
            check_server_version(info, self._where)
            for body in SCRIPTS.values():
                self.client.script_load(body)
        except redis.RedisError as exc:
            raise store_error(self._where, exc) from exc
        run_sync(self.plan_setup(), self._execute, self._embed)
        self.is_set_up = True
        logger.info("store at %s: %s vector search", self._where, self.search_path)

    def migrate_storage(self) -> int:
        """Convert data of storage schema 1 in place (see
        :mod:`streamagent.memory.store_schema`); returns the items whose vectors moved."""
        return run_sync(self.plan_migrate(_token), self._execute, self._embed)

    def _any_node(self) -> dict[str, Any]:
        if isinstance(self.client, redis.RedisCluster | aiocluster.RedisCluster):
            return {"target_nodes": self.client.get_random_node()}  # type: ignore[no-untyped-call]
        return {}

    # ------------------------------------------------------------------ I/O
    def _execute(self, calls: Sequence[Call]) -> list[Any]:
        try:
            try:
                return self._send(calls)
            except NoScriptError:  # the server lost its script cache (restart, flush)
                for body in SCRIPTS.values():
                    self.client.script_load(body)
                return self._send(calls)
        except redis.RedisError as exc:
            raise store_error(self._where, exc) from exc

    def _send(self, calls: Sequence[Call]) -> list[Any]:
        # EVALSHA directly: redis-py's Script objects add a SCRIPT EXISTS per pipeline
        if self._cluster or len(calls) == 1:
            return [self._one(call, self.client) for call in calls]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            self._one(call, pipe)
        replies = list(pipe.execute(raise_on_error=False))
        return [check_reply(call, reply) for call, reply in zip(calls, replies, strict=True)]

    def _one(self, call: Call, target: Any) -> Any:
        try:
            if call.script is None:
                return target.execute_command(*call.args, **self._routing(call, target))
            return target.evalsha(SHAS[call.script], len(call.keys), *call.keys, *call.args)
        except redis.ResponseError as exc:
            if call.errors_as_values and not isinstance(exc, NoScriptError):
                return exc
            raise

    def _routing(self, call: Call, target: Any) -> dict[str, Any]:
        # keyless module commands (FT.*) go to any node of a Cluster client
        if target is self.client and self._cluster and call.args[0].startswith("FT."):
            return self._any_node()
        return {}

    def _embed(self, request: Embed) -> list[list[float]]:
        assert self.embeddings is not None
        if request.query:
            return [self.embeddings.embed_query(request.texts[0])]
        return self.embeddings.embed_documents(request.texts)

    # ------------------------------------------------------------------ BaseStore
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (reads first, then writes); bad input raises before any write."""
        return run_sync(self.plan_batch(ops), self._execute, self._embed)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """:meth:`batch` in a worker thread."""
        return await asyncio.to_thread(self.batch, list(ops))
