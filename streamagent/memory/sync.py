"""``RedisSaver``: a LangGraph checkpointer on plain Redis (sync, with async wrappers).

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
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

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

__all__ = ["CONNECTION_DEFAULTS", "RedisSaver"]

logger = logging.getLogger(__name__)

CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
}


def retry_policy() -> Retry:
    """Two quick retries on connection errors (the scripts are idempotent)."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)


class RedisSaver(BaseRedisSaver):
    """Checkpointer on Redis >= 6.2, Valkey or Redis Cluster, core commands only.

    The sync methods talk to Redis directly; the async ones (``aget_tuple``, ``aput``...) run
    them in a worker thread, so one saver serves ``graph.invoke`` and ``graph.astream``.
    ``ttl_seconds`` applies to every key of a thread and is renewed on each write (and on
    reads with ``refresh_ttl_on_read``); ``keep_last`` keeps the newest N checkpoints per
    namespace (older subgraph checkpoints go with their root) and deletes the rest with their
    writes, blobs and messages, in the same atomic script. Deserialized messages are kept in
    a bounded cache by content digest (``message_cache_bytes`` of stored size, 0 disables);
    reads return private copies. The constructor does no I/O; call :meth:`setup` once.

    Example:
        >>> import redis
        >>> saver = RedisSaver(redis.Redis(), ttl_seconds=3600, keep_last=10)
        >>> saver.keys_for("thread-1")[0]
        '{streamagent:thread-1}:cp'
    """

    def __init__(
        self,
        client: redis.Redis | redis.RedisCluster,
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

    @classmethod
    @contextmanager
    def from_url(cls, url: str, **options: Any) -> Iterator[RedisSaver]:
        """A saver on a new connection pool to ``url`` (closed on exit).

        Socket connect/read timeouts of 2 s / 5 s and two quick retries are set;
        ``connection_options={...}`` overrides redis-py arguments. Other options go to the
        constructor.

        Example:
            >>> with RedisSaver.from_url("redis://127.0.0.1:6379/0") as saver:  # doctest: +SKIP
            ...     saver.setup()
        """
        connection = {**CONNECTION_DEFAULTS, "retry": retry_policy()}
        connection.update(options.pop("connection_options", {}))
        client = redis.Redis.from_url(url, **connection)
        try:
            yield cls(client, **options)
        finally:
            client.close()

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Check the server version (>= 6.2) and record the schema version."""
        try:
            info: Any = self.client.info("server")
            if "redis_version" not in info and info:
                info = next(iter(info.values()))
            check_server_version(info, self._where)
            self.client.set(self.schema_key(), SCHEMA_VERSION, nx=True)
            stored = self.client.get(self.schema_key())
        except redis.RedisError as exc:
            raise memory_error(self._where, "setup", exc) from exc
        if stored not in (SCHEMA_VERSION, SCHEMA_VERSION.encode()):
            from streamagent.errors import ConfigurationError

            raise ConfigurationError(
                f"key prefix {self.key_prefix!r} holds schema {stored!r}, expected "
                f"{SCHEMA_VERSION}; use another key_prefix"
            )

    # ------------------------------------------------------------------ reads
    def _read_many(
        self,
        thread_id: str,
        targets: Sequence[tuple[str, str]],
        configs: Sequence[RunnableConfig | None],
    ) -> list[CheckpointTuple | None]:
        held = self.held_messages(thread_id)
        try:
            reply = self._read(keys=self.keys_for(thread_id), args=self.read_args(targets, held))
        except redis.RedisError as exc:
            raise memory_error(self._where, "read", exc) from exc
        return self.decode_read(reply, thread_id, [ns for ns, _ in targets], configs, held)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint of ``config`` (its ``checkpoint_id``, else the latest)."""
        configurable = config["configurable"]
        checkpoint_id = configurable.get("checkpoint_id")
        target = (configurable.get("checkpoint_ns", ""), checkpoint_id or "")
        return self._read_many(
            str(configurable["thread_id"]), [target], [config if checkpoint_id else None]
        )[0]

    def _thread_ids(self, config: RunnableConfig | None) -> list[str]:
        if config is not None:
            return [str(config["configurable"]["thread_id"])]
        try:
            keys = self.client.scan_iter(match=self.index_match(), count=1000)
            return sorted({self.thread_of_index_key(key) for key in keys})
        except redis.RedisError as exc:
            raise memory_error(self._where, "list", exc) from exc

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (threads sorted by id when ``config`` is None)."""
        remaining = limit
        for thread_id in self._thread_ids(config):
            keys = self.keys_for(thread_id)
            try:
                pipe = self.client.pipeline(transaction=False)
                pipe.zrange(keys[7], 0, -1)
                pipe.zrange(keys[2], 0, -1)
                namespaces, members = pipe.execute()
            except redis.RedisError as exc:
                raise memory_error(self._where, "list", exc) from exc
            targets = self.list_targets(namespaces, members, config, before)
            for batch in self.batches(targets):
                for item in self._read_many(thread_id, batch, [None] * len(batch)):
                    if item is None or not self.matches(item, filter):
                        continue
                    if remaining is not None:
                        if remaining <= 0:
                            return
                        remaining -= 1
                    yield item

    # ------------------------------------------------------------------ writes
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint atomically; raises :class:`MemoryUnavailable` if not stored."""
        plan, returned = self.plan_put(config, checkpoint, metadata, new_versions)
        thread_id = str(config["configurable"]["thread_id"])
        try:
            full = False
            if not self.check_write(self._put(keys=plan.keys, args=plan.args()), thread_id):
                full = True  # a delta base or message is gone (deleted/expired): send all
                self.check_write(self._put(keys=plan.keys, args=plan.args(full=True)), thread_id)
        except redis.RedisError as exc:
            raise memory_error(self._where, "put", exc) from exc
        self.remember_put(plan, full=full)
        self.remember_thread(thread_id)
        return returned

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store pending writes of a task atomically."""
        plan = self.plan_put_writes(config, writes, task_id, task_path)
        thread_id = str(config["configurable"]["thread_id"])
        try:
            reply = self._put_writes(keys=plan.keys, args=plan.args())
            if not self.check_write(reply, thread_id):
                # a message this process stored earlier is gone (deleted/expired): send all
                reply = self._put_writes(keys=plan.keys, args=plan.args(full=True))
                self.check_write(reply, thread_id)
        except redis.RedisError as exc:
            raise memory_error(self._where, "put_writes", exc) from exc
        self.remember_stored(plan.keys[0], plan.messages)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's data (one script, one hash slot), leaving a short "deleted"
        tombstone so that no process reports it as expired."""
        try:
            self._delete_thread(
                keys=self.keys_for(str(thread_id)), args=[self.expiry_notice_seconds]
            )
        except redis.RedisError as exc:
            raise memory_error(self._where, "delete_thread", exc) from exc
        self.forget_thread(str(thread_id))

    # ------------------------------------------------------------------ async wrappers
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """``get_tuple`` in a worker thread."""
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """``list`` in a worker thread."""
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))
        )
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """``put`` in a worker thread."""
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """``put_writes`` in a worker thread."""
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """``delete_thread`` in a worker thread."""
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """``get_delta_channel_history`` in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )
