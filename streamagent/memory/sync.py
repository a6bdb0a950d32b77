"""``RedisSaver``: a LangGraph checkpointer on plain Redis (blocking I/O, with async methods
that run it in a worker thread).

The saver's logic is :class:`~streamagent.memory.base.BaseRedisSaver`'s; this shell only
sends the requests its operations yield (``_protocol.py``) over a redis-py client.

Example:
    >>> from langgraph.graph import START, StateGraph
    >>> from streamagent.memory import RedisSaver, default_redis_url
    >>> builder = StateGraph(dict)
    >>> builder = builder.add_node("echo", lambda state: state).add_edge(START, "echo")
    >>> url = default_redis_url()  # doctest: +SKIP
    >>> with RedisSaver.from_url(url, key_prefix="doc") as saver:  # doctest: +SKIP
    ...     saver.setup()
    ...     graph = builder.compile(checkpointer=saver)
    ...     graph.invoke({"x": 1}, {"configurable": {"thread_id": "t1"}})
    {'x': 1}
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from streamagent.memory._pool import (
    CONNECTION_DEFAULTS,
    POOL_MAX_CONNECTIONS,
    POOL_TIMEOUT_SECONDS,
    pool_options,
)
from streamagent.memory._protocol import Batch, Command, Op, Request, Scan, drive, iterate
from streamagent.memory.base import BaseRedisSaver

__all__ = [
    "CONNECTION_DEFAULTS",
    "POOL_MAX_CONNECTIONS",
    "POOL_TIMEOUT_SECONDS",
    "RedisSaver",
    "redis_client",
    "retry_policy",
]

T = TypeVar("T")


def redis_client(
    url: str,
    *,
    max_connections: int = POOL_MAX_CONNECTIONS,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    **connection: Any,
) -> redis.Redis:
    """A client on a *blocking* pool: at most ``max_connections`` connections; a call that
    finds all of them busy waits up to ``pool_timeout`` seconds for one (redis-py's default
    pool fails at once with "Too many connections"). The client owns and closes the pool.
    ``connection`` overrides :data:`CONNECTION_DEFAULTS` (and the retry policy)."""
    options = {**CONNECTION_DEFAULTS, "retry": retry_policy(), **connection}
    pool = redis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout, **options
    )
    return redis.Redis.from_pool(pool)


def retry_policy() -> Retry:
    """Two quick retries on connection errors (the scripts are idempotent)."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)


class RedisSaver(BaseRedisSaver[redis.Redis | redis.RedisCluster]):
    """Checkpointer on Redis >= 6.2, Valkey or Redis Cluster, core commands only.

    The sync methods talk to Redis directly; the async ones (``aget_tuple``, ``aput``...) run
    them in a worker thread, so one saver serves ``graph.invoke`` and ``graph.astream``.
    Options: see :class:`~streamagent.memory.base.BaseRedisSaver`.

    Example:
        >>> import redis
        >>> saver = RedisSaver(redis.Redis(), ttl_seconds=3600, keep_last=10)
        >>> saver.keys_for("thread-1").cp
        '{streamagent:thread-1}:cp'
    """

    @classmethod
    @contextmanager
    def from_url(cls, url: str, **options: Any) -> Iterator[RedisSaver]:
        """A saver on a new connection pool to ``url`` (closed on exit).

        The pool is bounded and blocking (:func:`redis_client`): ``max_connections``
        (default 64) connections at most, a call waits up to ``pool_timeout`` (default 10 s)
        for a free one. Socket connect/read timeouts of 2 s / 5 s and two quick retries are
        set; ``connection_options={...}`` overrides redis-py arguments. Other options go to
        the constructor.

        Example:
            >>> with RedisSaver.from_url("redis://127.0.0.1:6379/0") as saver:  # doctest: +SKIP
            ...     saver.setup()
        """
        client = redis_client(url, **pool_options(options))
        try:
            yield cls(client, **options)
        finally:
            client.close()

    # ------------------------------------------------------------------ I/O
    def _execute(self, request: Request) -> Any:
        """Send one request and return its reply (blocking)."""
        client = self.client
        if isinstance(request, Command):
            return client.execute_command(*request.args)  # type: ignore[no-untyped-call]
        if isinstance(request, Batch):
            pipe = client.pipeline(transaction=False)
            for args in request.commands:
                pipe.execute_command(*args)  # type: ignore[no-untyped-call]
            return pipe.execute()
        if isinstance(request, Scan):
            return list(client.scan_iter(match=request.match, count=request.count_hint))
        return request.function(*request.args)  # Blocking: run here

    def _drive(self, op: Op[T]) -> T:
        return drive(op, self._execute)

    def _iterate(self, op: Op[Any]) -> Iterator[Any]:
        return iterate(op, self._execute)

    async def _adrive(self, op: Op[T]) -> T:
        return await asyncio.to_thread(drive, op, self._execute)

    async def _aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:
        items = await asyncio.to_thread(lambda: list(iterate(op, self._execute)))
        for item in items:
            yield item
