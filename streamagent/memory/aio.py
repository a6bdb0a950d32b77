"""``AsyncRedisSaver``: the natively async checkpointer (``redis.asyncio``).

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
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import MaxConnectionsError

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory._errors import check_server_version, describe_client
from streamagent.memory._lua import (
    ACQUIRE_SCRIPT,
    DELETE_CHECKPOINTS_SCRIPT,
    DELETE_THREAD_SCRIPT,
    DUMP_SCRIPT,
    HISTORY_SCRIPT,
    MIGRATE_SCRIPT,
    PRUNE_SCRIPT,
    PUT_SCRIPT,
    PUT_WRITES_SCRIPT,
    READ_SCRIPT,
    RELEASE_SCRIPT,
    RESTORE_SCRIPT,
)
from streamagent.memory._setup import (
    eviction_problem,
    handle_eviction,
    permission_error,
    plain_port_answers,
    tls_endpoint,
    tls_mismatch,
)
from streamagent.memory.base import (
    EXPIRY_NOTICE_SECONDS,
    KNOWN_THREADS,
    MESSAGE_CACHE_BYTES,
    SCHEMA_VERSION,
    BaseRedisSaver,
    Probe,
    check_eviction_mode,
    check_schema,
    migrate_args,
    one_node,
)
from streamagent.memory.sync import (
    CONNECTION_DEFAULTS,
    POOL_MAX_CONNECTIONS,
    POOL_TIMEOUT_SECONDS,
)

__all__ = ["AsyncRedisSaver", "QueueingConnectionPool", "async_redis_client"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
            return await super().get_connection()  # type: ignore[no-untyped-call]
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
                    return await super().get_connection()  # type: ignore[no-untyped-call]
                except MaxConnectionsError:
                    continue
        finally:
            self._waiting -= 1

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if self._waiting and self._released is not None:
            async with self._released:
                self._released.notify()


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
    options = {
        **CONNECTION_DEFAULTS,
        "retry": AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        **connection,
    }
    pool = QueueingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=pool_timeout, **options
    )
    return aioredis.Redis.from_pool(pool)


class AsyncRedisSaver(BaseRedisSaver):
    """Async checkpointer on Redis >= 6.2, Valkey or Redis Cluster (same storage as
    :class:`~streamagent.memory.RedisSaver`; both read each other's threads).

    Example:
        >>> import redis.asyncio
        >>> saver = AsyncRedisSaver(redis.asyncio.Redis(), keep_last=1)
        >>> saver.keep_last
        1
    """

    def __init__(
        self,
        client: aioredis.Redis | aioredis.RedisCluster,
        *,
        key_prefix: str = "streamagent",
        ttl_seconds: int | None = None,
        refresh_ttl_on_read: bool = False,
        keep_last: int | None = None,
        serde: SerializerProtocol | None = None,
        message_cache_bytes: int = MESSAGE_CACHE_BYTES,
        expiry_notice_seconds: int = EXPIRY_NOTICE_SECONDS,
        known_threads: int = KNOWN_THREADS,
    ) -> None:
        super().__init__(
            key_prefix=key_prefix,
            ttl_seconds=ttl_seconds,
            refresh_ttl_on_read=refresh_ttl_on_read,
            keep_last=keep_last,
            serde=serde,
            message_cache_bytes=message_cache_bytes,
            expiry_notice_seconds=expiry_notice_seconds,
            known_threads=known_threads,
        )
        self.client = client
        self._where = describe_client(client)
        self._read = client.register_script(READ_SCRIPT)
        self._put = client.register_script(PUT_SCRIPT)
        self._put_writes = client.register_script(PUT_WRITES_SCRIPT)
        self._delete_thread = client.register_script(DELETE_THREAD_SCRIPT)
        self._delete_checkpoints = client.register_script(DELETE_CHECKPOINTS_SCRIPT)
        self._prune = client.register_script(PRUNE_SCRIPT)
        self._dump = client.register_script(DUMP_SCRIPT)
        self._restore = client.register_script(RESTORE_SCRIPT)
        self._history = client.register_script(HISTORY_SCRIPT)
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._migrate = client.register_script(MIGRATE_SCRIPT)
        self._tls = tls_endpoint(client) is not None
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, **options: Any) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on a new async connection pool to ``url`` (closed on exit): bounded and
        blocking (``max_connections``, default 64; a call waits up to ``pool_timeout``,
        default 10 s, for a free connection: 1,000 concurrent conversations queue instead of
        failing); socket timeouts 2 s connect / 5 s read, two quick retries;
        ``connection_options`` overrides redis-py arguments."""
        client = async_redis_client(
            url,
            max_connections=options.pop("max_connections", POOL_MAX_CONNECTIONS),
            pool_timeout=options.pop("pool_timeout", POOL_TIMEOUT_SECONDS),
            **options.pop("connection_options", {}),
        )
        try:
            yield cls(client, **options)
        finally:
            await client.aclose()

    def _bind(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ setup
    async def asetup(self, *, eviction: str = "warn") -> None:
        """Check the server and record the schema version (see ``RedisSaver.setup``)."""
        self._bind()
        check_eviction_mode(eviction)
        tls = tls_endpoint(self.client)
        if tls is not None and await asyncio.to_thread(plain_port_answers, *tls):
            raise tls_mismatch(self._where)
        try:
            check_server_version(one_node(await self.client.info("server")), self._where)
            memory = one_node(await self.client.info("memory"))
            problem = eviction_problem(memory, self.ttl_seconds)
            await self.client.set(self.schema_key(), SCHEMA_VERSION, nx=True)
            stored = await self.client.get(self.schema_key())
            if stored in ("1", b"1"):
                stored = await self._migrate_schema()
        except redis.RedisError as exc:
            raise permission_error(self._where, exc) or self._fail("setup", exc) from exc
        check_schema(stored, self.key_prefix)
        handle_eviction(problem, eviction, self._where)
        await self._probe()

    async def _probe(self) -> None:
        probe = Probe()
        try:
            for name, step in probe.async_steps(self):
                try:
                    await step()
                except MemoryUnavailable as exc:
                    cause = exc.__cause__ or exc
                    raise permission_error(self._where, cause, name) or exc from cause
                except redis.RedisError as exc:
                    denied = permission_error(self._where, exc, name)
                    raise denied or self._fail("setup", exc) from exc
        except redis.RedisError as exc:
            raise permission_error(self._where, exc) or self._fail("setup", exc) from exc
        finally:
            try:
                await self.client.delete(*probe.keys(self))
            except redis.RedisError:
                logger.warning("could not delete the setup probe's keys", exc_info=True)
            probe.forget(self)

    async def _migrate_schema(self) -> str:
        """Migrate every thread of a schema-1 prefix to schema 2 (see ``MIGRATE_SCRIPT``).
        Stop writers of older streamagent versions first: their writes keep no head."""
        threads = await self._thread_ids(None)
        for thread_id in threads:
            keys = self.keys_for(thread_id)
            records: Any = await self.client.hgetall(keys[0])
            await self._migrate(keys=keys, args=migrate_args(records, self.expiry_notice_seconds))
        await self.client.set(self.schema_key(), SCHEMA_VERSION)
        logger.warning(
            "migrated %d threads under key prefix %r to storage schema %s",
            len(threads),
            self.key_prefix,
            SCHEMA_VERSION,
        )
        return SCHEMA_VERSION

    # ------------------------------------------------------------------ reads
    async def _read_many(
        self,
        thread_id: str,
        targets: Sequence[tuple[str, str]],
        configs: Sequence[RunnableConfig | None],
    ) -> list[CheckpointTuple | None]:
        self._bind()
        held = self.held_messages(thread_id)
        try:
            reply = await self._read(
                keys=self.keys_for(thread_id), args=self.read_args(targets, held)
            )
        except redis.RedisError as exc:
            raise self._fail("read", exc) from exc
        return self.decode_read(reply, thread_id, [ns for ns, _ in targets], configs, held)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of ``config`` (its ``checkpoint_id``, else the latest)."""
        configurable = config["configurable"]
        checkpoint_id = configurable.get("checkpoint_id")
        target = (configurable.get("checkpoint_ns", ""), checkpoint_id or "")
        found = await self._read_many(
            str(configurable["thread_id"]), [target], [config if checkpoint_id else None]
        )
        return found[0]

    async def _thread_ids(self, config: RunnableConfig | None) -> list[str]:
        if config is not None:
            return [str(config["configurable"]["thread_id"])]
        try:
            keys = [k async for k in self.client.scan_iter(match=self.index_match(), count=1000)]
        except redis.RedisError as exc:
            raise self._fail("list", exc) from exc
        return sorted({self.thread_of_index_key(key) for key in keys})

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first (threads sorted by id when ``config`` is None)."""
        remaining = limit
        for thread_id in await self._thread_ids(config):
            keys = self.keys_for(thread_id)
            try:
                namespaces: Any = await self.client.zrange(keys[7], 0, -1)
                members: Any = await self.client.zrange(keys[2], 0, -1)
            except redis.RedisError as exc:
                raise self._fail("list", exc) from exc
            targets = self.list_targets(namespaces, members, config, before)
            for batch in self.batches(targets):
                for item in await self._read_many(thread_id, batch, [None] * len(batch)):
                    if item is None or not self.matches(item, filter):
                        continue
                    if remaining is not None:
                        if remaining <= 0:
                            return
                        remaining -= 1
                    yield item

    # ------------------------------------------------------------------ writes
    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; raises :class:`MemoryUnavailable` if not stored."""
        self._bind()
        plan, returned = self.plan_put(config, checkpoint, metadata, new_versions)
        thread_id = str(config["configurable"]["thread_id"])
        try:
            full = False
            if not self.check_write(await self._put(keys=plan.keys, args=plan.args()), thread_id):
                full = True  # a delta base or message is gone (deleted/expired): send all
                self.check_write(
                    await self._put(keys=plan.keys, args=plan.args(full=True)), thread_id
                )
        except redis.RedisError as exc:
            raise self._fail("put", exc) from exc
        self.remember_put(plan, full=full)
        self.remember_thread(thread_id)
        return returned

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store pending writes of a task atomically."""
        self._bind()
        plan = self.plan_put_writes(config, writes, task_id, task_path)
        thread_id = str(config["configurable"]["thread_id"])
        try:
            reply = await self._put_writes(keys=plan.keys, args=plan.args())
            if not self.check_write(reply, thread_id):
                # a message this process stored earlier is gone (deleted/expired): send all
                reply = await self._put_writes(keys=plan.keys, args=plan.args(full=True))
                self.check_write(reply, thread_id)
        except redis.RedisError as exc:
            raise self._fail("put_writes", exc) from exc
        self.remember_stored(plan.keys[0], plan.messages)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete the thread's data (one script, one hash slot), leaving a short "deleted"
        tombstone so that no process reports it as expired."""
        self._bind()
        try:
            await self._delete_thread(
                keys=self.keys_for(str(thread_id)), args=[self.expiry_notice_seconds]
            )
        except redis.RedisError as exc:
            raise self._fail("delete_thread", exc) from exc
        self.forget_thread(str(thread_id))

    # ------------------------------------------------------------------ extended contract
    async def adelete_checkpoints(self, thread_id: str, fields: Sequence[str]) -> None:
        """Delete checkpoints (``"ns\\0id"`` fields) of a thread with their writes; heads
        move to the newest remaining checkpoint, unreferenced data is collected."""
        self._bind()
        thread_id = str(thread_id)
        try:
            reply = await self._delete_checkpoints(
                keys=self.keys_for(thread_id),
                args=[self._ttl, self.expiry_notice_seconds, *fields],
            )
        except redis.RedisError as exc:
            raise self._fail("delete_for_runs", exc) from exc
        self.forget_thread(thread_id)
        self.check_write(reply, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint whose metadata ``run_id`` is one of ``run_ids`` (with its
        writes), on every thread of this key prefix (a SCAN: a maintenance operation)."""
        self._bind()
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        for thread_id in await self._thread_ids(None):
            try:
                records: Any = await self.client.hgetall(self.keys_for(thread_id)[0])
            except redis.RedisError as exc:
                raise self._fail("delete_for_runs", exc) from exc
            fields = [f for f, rec in records.items() if self.run_id_of(rec) in wanted]
            if fields:
                await self.adelete_checkpoints(thread_id, fields)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Make ``target_thread_id`` a copy of ``source_thread_id`` (see
        ``RedisSaver.copy_thread``)."""
        self._bind()
        source, target = str(source_thread_id), str(target_thread_id)
        try:
            reply: Any = await self._dump(keys=self.keys_for(source), args=[])
            status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if status:
                self.absent(status, source, 0)
                return
            payloads = [p or b"" for p in reply[1:]]
            restored = await self._restore(
                keys=self.keys_for(target),
                args=[self._ttl, self.expiry_notice_seconds, *payloads],
            )
        except redis.RedisError as exc:
            raise self._fail("copy_thread", exc) from exc
        self.forget_thread(target)
        self.check_write(restored, target)
        self.remember_thread(target)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: each namespace keeps only its head checkpoint (and its
        writes); ``"delete"``: the threads are deleted."""
        self._bind()
        if strategy not in ("keep_latest", "delete"):
            raise ConfigurationError(f"unknown prune strategy {strategy!r}")
        for thread_id in map(str, thread_ids):
            if strategy == "delete":
                await self.adelete_thread(thread_id)
                continue
            try:
                reply = await self._prune(
                    keys=self.keys_for(thread_id), args=[self._ttl, self.expiry_notice_seconds]
                )
            except redis.RedisError as exc:
                raise self._fail("prune", exc) from exc
            self.forget_thread(thread_id)
            self.check_write(reply, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of ``channels`` along the parent chain of ``config``'s checkpoint,
        in one script."""
        self._bind()
        if not channels:
            return {}
        thread_id, target = self.history_target(config)
        try:
            reply: Any = await self._history(
                keys=self.keys_for(thread_id), args=[*target, *channels]
            )
        except redis.RedisError as exc:
            raise self._fail("get_delta_channel_history", exc) from exc
        return self.decode_history(reply, thread_id, channels)

    async def aturn_lock_probe(self, thread_id: str) -> None:
        """Take and release the turn lock of ``thread_id`` once (setup's permission probe)."""
        keys = self.keys_for(thread_id)
        token, _ = await self._acquire(keys=keys, args=[1000, 0])
        await self._release(keys=keys, args=[token, 0])

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

    def setup(self) -> None:
        """Sync bridge to :meth:`asetup` (from another thread)."""
        self._run(self.asetup())

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync bridge to :meth:`aget_tuple` (from another thread)."""
        return self._run(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync bridge to :meth:`alist` (from another thread)."""

        async def collect() -> list[CheckpointTuple]:
            return [
                item async for item in self.alist(config, filter=filter, before=before, limit=limit)
            ]

        yield from self._run(collect())

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync bridge to :meth:`aput` (from another thread)."""
        return self._run(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync bridge to :meth:`aput_writes` (from another thread)."""
        self._run(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync bridge to :meth:`adelete_thread` (from another thread)."""
        self._run(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync bridge to :meth:`adelete_for_runs` (from another thread)."""
        self._run(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync bridge to :meth:`acopy_thread` (from another thread)."""
        self._run(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Sync bridge to :meth:`aprune` (from another thread)."""
        self._run(self.aprune(thread_ids, strategy=strategy))

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Sync bridge to :meth:`aget_delta_channel_history` (from another thread)."""
        return self._run(self.aget_delta_channel_history(config=config, channels=channels))
