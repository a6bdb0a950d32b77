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
import logging
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
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
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff

from streamagent.errors import ConfigurationError
from streamagent.memory._errors import check_server_version, describe_client, memory_error
from streamagent.memory._lua import (
    DELETE_THREAD_SCRIPT,
    PUT_SCRIPT,
    PUT_WRITES_SCRIPT,
    READ_SCRIPT,
)
from streamagent.memory.base import (
    EXPIRY_NOTICE_SECONDS,
    KNOWN_THREADS,
    MESSAGE_CACHE_BYTES,
    SCHEMA_VERSION,
    BaseRedisSaver,
)
from streamagent.memory.sync import CONNECTION_DEFAULTS

__all__ = ["AsyncRedisSaver"]

logger = logging.getLogger(__name__)
T = TypeVar("T")


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
        self.loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, **options: Any) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on a new async connection pool to ``url`` (closed on exit); socket
        timeouts 2 s connect / 5 s read, two quick retries; ``connection_options`` overrides."""
        connection = {
            **CONNECTION_DEFAULTS,
            "retry": AsyncRetry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        }
        connection.update(options.pop("connection_options", {}))
        client = aioredis.Redis.from_url(url, **connection)
        try:
            yield cls(client, **options)
        finally:
            await client.aclose()

    def _bind(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ setup
    async def asetup(self) -> None:
        """Check the server version (>= 6.2) and record the schema version."""
        self._bind()
        try:
            info: Any = await self.client.info("server")
            if "redis_version" not in info and info:
                info = next(iter(info.values()))
            check_server_version(info, self._where)
            await self.client.set(self.schema_key(), SCHEMA_VERSION, nx=True)
            stored = await self.client.get(self.schema_key())
        except redis.RedisError as exc:
            raise memory_error(self._where, "setup", exc) from exc
        if stored not in (SCHEMA_VERSION, SCHEMA_VERSION.encode()):
            raise ConfigurationError(
                f"key prefix {self.key_prefix!r} holds schema {stored!r}, expected "
                f"{SCHEMA_VERSION}; use another key_prefix"
            )

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
            raise memory_error(self._where, "read", exc) from exc
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
            raise memory_error(self._where, "list", exc) from exc
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
                raise memory_error(self._where, "list", exc) from exc
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
            raise memory_error(self._where, "put", exc) from exc
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
            raise memory_error(self._where, "put_writes", exc) from exc
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
            raise memory_error(self._where, "delete_thread", exc) from exc
        self.forget_thread(str(thread_id))

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
