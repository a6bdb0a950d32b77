"""``AsyncRedisSaver``: the natively async checkpointer (``redis.asyncio``).

The saver's logic is :class:`~streamagent.memory.base.BaseRedisSaver`'s; this shell only
sends the requests its operations yield (``_protocol.py``) over a ``redis.asyncio`` client.

Its sync methods (``get_tuple``, ``put``...) work from threads other than the event loop's,
by submitting the coroutine to the loop the saver first ran on (as LangGraph's
``AsyncPostgresSaver`` does); called on the loop's own thread they raise
:class:`~streamagent.errors.ConfigurationError` (use the ``a``-methods, or :class:`RedisSaver`).

Example:
    >>> from streamagent.memory import AsyncRedisSaver
    >>> async def main(url: str) -> None:
    ...     async with AsyncRedisSaver.from_url(url, ttl_seconds=3600) as saver:
    ...         await saver.asetup()
    ...         print(await saver.aget_tuple({"configurable": {"thread_id": "nope"}}))
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import MaxConnectionsError

from streamagent.errors import ConfigurationError
from streamagent.memory._pool import (
    CONNECTION_DEFAULTS,
    POOL_MAX_CONNECTIONS,
    POOL_TIMEOUT_SECONDS,
    pool_options,
)
from streamagent.memory._protocol import (
    Batch,
    Command,
    Op,
    Request,
    Scan,
    adrive,
    aiterate,
    pack_command,
)
from streamagent.memory.base import BaseRedisSaver

__all__ = ["AsyncRedisSaver", "QueueingConnectionPool", "TimedSendConnection", "async_redis_client"]

T = TypeVar("T")


# redis-py's pool method without its deprecation wrapper (which inspects the arguments of
# every call; this module passes none, except the command name redis-py < 5.3 requires)
_RAW_GET_CONNECTION: Any = getattr(
    aioredis.ConnectionPool.get_connection, "__wrapped__", aioredis.ConnectionPool.get_connection
)


def _required_arguments(method: Any) -> list[str]:
    parameters = list(inspect.signature(method).parameters.values())[1:]
    return [
        p.name for p in parameters if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]


_GET_CONNECTION_ARGS: tuple[str, ...] = (
    ("EVALSHA",) if _required_arguments(_RAW_GET_CONNECTION) else ()
)


async def _get_pooled_connection(pool: Any) -> Any:
    return await _RAW_GET_CONNECTION(pool, *_GET_CONNECTION_ARGS)


class QueueingConnectionPool(aioredis.ConnectionPool):
    """redis-py's async pool, bounded: a call that finds every one of ``max_connections``
    connections busy waits (up to ``timeout`` seconds) for one to be released, instead of
    failing with "Too many connections". The path with a free connection is the plain
    pool's, unchanged (redis-py's ``BlockingConnectionPool`` takes a condition and a timer on
    every call)."""

    def __init__(self, *args: Any, timeout: float = POOL_TIMEOUT_SECONDS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = timeout
        self._released: asyncio.Condition | None = None
        self._waiting = 0

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await _get_pooled_connection(self)
        except MaxConnectionsError:
            pass
        if self._released is None:
            self._released = asyncio.Condition()
        deadline = asyncio.get_running_loop().time() + self.timeout
        self._waiting += 1
        try:
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise redis.ConnectionError("No connection available.")
                async with self._released:
                    # woken by a release; the short bound covers one released before we waited
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._released.wait(), min(remaining, 0.1))
                try:
                    return await _get_pooled_connection(self)
                except MaxConnectionsError:
                    continue
        finally:
            self._waiting -= 1

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if self._waiting and self._released is not None:
            async with self._released:
                self._released.notify()


class TimedSendConnection(aioredis.Connection):
    """redis-py's async connection, bounding a send with ``asyncio.timeout`` where redis-py
    uses ``asyncio.wait_for`` (which on Python 3.11 makes a task, and an event loop turn,
    for every command), and only when the send can wait at all: a command the transport
    takes whole below its high-water mark, with no health check due, cannot block. The bound
    is the same ``socket_timeout``; a send that exceeds it raises :class:`redis.TimeoutError`
    and drops the connection, as redis-py's does."""

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        timeout = self.socket_timeout
        writer = getattr(self, "_writer", None)
        if not timeout or writer is None or not getattr(self, "is_connected", False):
            return await super().send_packed_command(command, check_health)
        self.socket_timeout = None  # redis-py then writes inline, without a task
        try:
            if not (check_health and self._health_check_due()) and _fits(writer, command):
                return await super().send_packed_command(command, False)  # none due
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)
        except TimeoutError:  # redis-py dropped the connection when it was cancelled
            raise redis.TimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout

    def _health_check_due(self) -> bool:
        interval = getattr(self, "health_check_interval", 0)
        due = getattr(self, "next_health_check", -1)
        return bool(interval) and asyncio.get_running_loop().time() > due


def _fits(writer: Any, command: Any) -> bool:
    """Whether the transport takes ``command`` without waiting (its buffer stays at or
    below the high-water mark, so ``drain()`` returns at once)."""
    if isinstance(command, str | bytes):
        size = len(command)
    else:
        size = sum(len(chunk) for chunk in command)
    transport = writer.transport
    return bool(transport.get_write_buffer_size() + size <= transport.get_write_buffer_limits()[1])


def async_redis_client(
    url: str,
    *,
    max_connections: int = POOL_MAX_CONNECTIONS,
    pool_timeout: float = POOL_TIMEOUT_SECONDS,
    **connection: Any,
) -> aioredis.Redis:
    """An async client on a bounded, queueing pool (:class:`QueueingConnectionPool`): at
    most ``max_connections`` connections, a call that finds them all busy waits up to
    ``pool_timeout`` seconds (see :func:`streamagent.memory.sync.redis_client`). The client
    owns and closes the pool."""
    retry = AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2)
    options = {**CONNECTION_DEFAULTS, "retry": retry, **connection}
    pool = QueueingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout, **options
    )
    if pool.connection_class is aioredis.Connection:  # plain TCP (TLS and unix: as they are)
        pool.connection_class = TimedSendConnection
    return aioredis.Redis.from_pool(pool)


async def _collect(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


@functools.cache
def _connection_getter(pool_class: Any) -> Callable[[Any], Awaitable[Any]] | None:
    """How a script call takes a connection from a pool of ``pool_class`` (called with the
    pool), or None when its ``get_connection`` wants arguments (redis-py < 5.3)."""
    method = pool_class.get_connection
    if method is aioredis.ConnectionPool.get_connection:
        return _get_pooled_connection  # without the deprecation wrapper
    return None if _required_arguments(method) else cast("Callable[[Any], Awaitable[Any]]", method)


async def _send_and_read(conn: Any, command: bytes) -> Any:
    await conn.send_packed_command(command)
    return await conn.read_response()


class AsyncRedisSaver(BaseRedisSaver[aioredis.Redis | aioredis.RedisCluster]):
    """Async checkpointer on Redis >= 6.2, Valkey or Redis Cluster (same storage as
    :class:`~streamagent.memory.RedisSaver`; both read each other's threads). Options: see
    :class:`~streamagent.memory.base.BaseRedisSaver`.

    Example:
        >>> import redis.asyncio
        >>> saver = AsyncRedisSaver(redis.asyncio.Redis(), keep_last=1)
        >>> saver.keep_last
        1
    """

    #: the event loop the saver first ran on (its sync methods submit to it)
    loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, **options: Any) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on a new async connection pool to ``url`` (closed on exit): bounded and
        blocking (``max_connections``, default 64; a call waits up to ``pool_timeout``,
        default 10 s, for a free connection: 1,000 concurrent conversations queue instead of
        failing); socket timeouts 2 s connect / 5 s read, two quick retries;
        ``connection_options`` overrides redis-py arguments."""
        client = async_redis_client(url, **pool_options(options))
        try:
            yield cls(client, **options)
        finally:
            await client.aclose()

    # ------------------------------------------------------------------ I/O
    async def _aexecute(self, request: Request) -> Any:
        """Send one request and return its reply."""
        if isinstance(request, Command):
            if request.args[0] == "EVALSHA":
                return await self._evalsha(request.args)
            return await self.client.execute_command(*request.args)
        if isinstance(request, Scan):
            scan = self.client.scan_iter(match=request.match, count=request.count_hint)
            return [key async for key in scan]
        if isinstance(request, Batch):
            pipe = self.client.pipeline(transaction=False)
            for args in request.commands:
                pipe.execute_command(*args)
            return await pipe.execute()
        return await asyncio.to_thread(request.function, *request.args)  # Blocking

    async def _evalsha(self, args: tuple[Any, ...]) -> Any:
        """A script call (the hot path): packed at once (:func:`pack_command`), sent on a
        connection of the client's pool with that connection's retry policy, as
        ``execute_command`` sends it, minus what a script's reply does not need (client
        initialisation, response callbacks, per-command observability hooks). Cluster and
        single-connection clients go through ``execute_command``."""
        client = self.client
        pool: Any = getattr(client, "connection_pool", None)
        take = None if pool is None else _connection_getter(pool.__class__)
        if take is None or getattr(client, "single_connection_client", False):
            return await client.execute_command(*args)
        command = pack_command(args)
        conn = await take(pool)
        try:
            return await conn.retry.call_with_retry(
                lambda: _send_and_read(conn, command), lambda _: conn.disconnect()
            )
        finally:
            await pool.release(conn)

    async def _adrive(self, op: Op[T]) -> T:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        return await adrive(op, self._aexecute)

    async def _aiterate(self, op: Op[Any]) -> AsyncIterator[Any]:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        async for item in aiterate(op, self._aexecute):
            yield item

    # ------------------------------------------------------------------ sync bridges
    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or not loop.is_running():
            coro.close()
            raise ConfigurationError(
                "AsyncRedisSaver's sync methods only work from a thread other than its event "
                "loop's, after the saver was used in that loop; use the async methods "
                "(ainvoke/astream) or streamagent.memory.RedisSaver"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def _drive(self, op: Op[T]) -> T:
        return self._run(adrive(op, self._aexecute))

    def _iterate(self, op: Op[Any]) -> Iterator[Any]:
        yield from self._run(_collect(aiterate(op, self._aexecute)))
