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

__all__ = [
    "CONNECTION_DEFAULTS",
    "POOL_MAX_CONNECTIONS",
    "POOL_TIMEOUT_SECONDS",
    "RedisSaver",
    "redis_client",
]

logger = logging.getLogger(__name__)

CONNECTION_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
}


#: connections a saver's pool opens at most (``from_url``); more concurrent calls queue
POOL_MAX_CONNECTIONS = 64
#: how long a call waits in that queue for a free connection before MemoryUnavailable
POOL_TIMEOUT_SECONDS = 10.0


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
        self._delete_checkpoints = client.register_script(DELETE_CHECKPOINTS_SCRIPT)
        self._prune = client.register_script(PRUNE_SCRIPT)
        self._dump = client.register_script(DUMP_SCRIPT)
        self._restore = client.register_script(RESTORE_SCRIPT)
        self._history = client.register_script(HISTORY_SCRIPT)
        self._acquire = client.register_script(ACQUIRE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._migrate = client.register_script(MIGRATE_SCRIPT)
        self._tls = tls_endpoint(client) is not None

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
        client = redis_client(
            url,
            max_connections=options.pop("max_connections", POOL_MAX_CONNECTIONS),
            pool_timeout=options.pop("pool_timeout", POOL_TIMEOUT_SECONDS),
            **options.pop("connection_options", {}),
        )
        try:
            yield cls(client, **options)
        finally:
            client.close()

    # ------------------------------------------------------------------ setup
    def setup(self, *, eviction: str = "warn") -> None:
        """Check the server and record the schema version; see :mod:`._setup`.

        Says "TLS?" at once when a ``rediss://`` URL points at a plain port, refuses Redis
        older than 6.2, warns about (``eviction="warn"``), refuses (``"refuse"``) or ignores
        (``"ignore"``) a ``maxmemory-policy`` that can evict the saver's keys, and runs every
        command the saver uses on a probe thread: a missing ACL permission is a
        :class:`~streamagent.errors.ConfigurationError` naming it, not a failed first turn.
        """
        check_eviction_mode(eviction)
        tls = tls_endpoint(self.client)
        if tls is not None and plain_port_answers(*tls):
            raise tls_mismatch(self._where)
        try:
            check_server_version(one_node(self.client.info("server")), self._where)
            problem = eviction_problem(one_node(self.client.info("memory")), self.ttl_seconds)
            self.client.set(self.schema_key(), SCHEMA_VERSION, nx=True)
            stored = self.client.get(self.schema_key())
            if stored in ("1", b"1"):
                stored = self._migrate_schema()
        except redis.RedisError as exc:
            raise permission_error(self._where, exc) or self._fail("setup", exc) from exc
        check_schema(stored, self.key_prefix)
        handle_eviction(problem, eviction, self._where)
        self._probe()

    def _probe(self) -> None:
        """Run every script and command the saver uses on a probe thread (then delete it)."""
        probe = Probe()
        try:
            for name, step in probe.sync_steps(self):
                try:
                    step()
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
                self.client.delete(*probe.keys(self))
            except redis.RedisError:
                logger.warning("could not delete the setup probe's keys", exc_info=True)
            probe.forget(self)

    def _migrate_schema(self) -> str:
        """Migrate every thread of a schema-1 prefix to schema 2 (see ``MIGRATE_SCRIPT``).
        Stop writers of older streamagent versions first: their writes keep no head."""
        threads = self._thread_ids(None)
        for thread_id in threads:
            keys = self.keys_for(thread_id)
            records: Any = self.client.hgetall(keys[0])
            self._migrate(keys=keys, args=migrate_args(records, self.expiry_notice_seconds))
        self.client.set(self.schema_key(), SCHEMA_VERSION)
        logger.warning(
            "migrated %d threads under key prefix %r to storage schema %s",
            len(threads),
            self.key_prefix,
            SCHEMA_VERSION,
        )
        return SCHEMA_VERSION

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
            raise self._fail("read", exc) from exc
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
            raise self._fail("list", exc) from exc

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
                raise self._fail("list", exc) from exc
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
            raise self._fail("put", exc) from exc
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
            raise self._fail("put_writes", exc) from exc
        self.remember_stored(plan.keys[0], plan.messages)

    def delete_thread(self, thread_id: str) -> None:
        """Delete the thread's data (one script, one hash slot), leaving a short "deleted"
        tombstone so that no process reports it as expired."""
        try:
            self._delete_thread(
                keys=self.keys_for(str(thread_id)), args=[self.expiry_notice_seconds]
            )
        except redis.RedisError as exc:
            raise self._fail("delete_thread", exc) from exc
        self.forget_thread(str(thread_id))

    # ------------------------------------------------------------------ extended contract
    def delete_checkpoints(self, thread_id: str, fields: Sequence[str]) -> None:
        """Delete checkpoints (``"ns\\0id"`` fields) of a thread with their writes; heads
        move to the newest remaining checkpoint, unreferenced data is collected."""
        thread_id = str(thread_id)
        try:
            reply = self._delete_checkpoints(
                keys=self.keys_for(thread_id),
                args=[self._ttl, self.expiry_notice_seconds, *fields],
            )
        except redis.RedisError as exc:
            raise self._fail("delete_for_runs", exc) from exc
        self.forget_thread(thread_id)
        self.check_write(reply, thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint whose metadata ``run_id`` is one of ``run_ids`` (with its
        writes), on every thread of this key prefix (a SCAN: a maintenance operation)."""
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        for thread_id in self._thread_ids(None):
            try:
                records: Any = self.client.hgetall(self.keys_for(thread_id)[0])
            except redis.RedisError as exc:
                raise self._fail("delete_for_runs", exc) from exc
            fields = [f for f, rec in records.items() if self.run_id_of(rec) in wanted]
            if fields:
                self.delete_checkpoints(thread_id, fields)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Make ``target_thread_id`` a copy of ``source_thread_id`` (every checkpoint, write,
        namespace and head; the target's previous data is replaced). One consistent snapshot
        of the source (``DUMP`` in one script), restored in one script."""
        source, target = str(source_thread_id), str(target_thread_id)
        try:
            reply: Any = self._dump(keys=self.keys_for(source), args=[])
            status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
            if status:
                self.absent(status, source, 0)
                return
            payloads = [p or b"" for p in reply[1:]]
            restored = self._restore(
                keys=self.keys_for(target),
                args=[self._ttl, self.expiry_notice_seconds, *payloads],
            )
        except redis.RedisError as exc:
            raise self._fail("copy_thread", exc) from exc
        self.forget_thread(target)
        self.check_write(restored, target)
        self.remember_thread(target)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``"keep_latest"``: each namespace keeps only its head checkpoint (and its
        writes); ``"delete"``: the threads are deleted. See docs/memory.md for DeltaChannel."""
        if strategy not in ("keep_latest", "delete"):
            raise ConfigurationError(f"unknown prune strategy {strategy!r}")
        for thread_id in map(str, thread_ids):
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            try:
                reply = self._prune(
                    keys=self.keys_for(thread_id), args=[self._ttl, self.expiry_notice_seconds]
                )
            except redis.RedisError as exc:
                raise self._fail("prune", exc) from exc
            self.forget_thread(thread_id)
            self.check_write(reply, thread_id)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed of ``channels`` along the parent chain of ``config``'s checkpoint,
        in one script (LangGraph's ``DeltaChannel`` replays a thread from it)."""
        if not channels:
            return {}
        thread_id, target = self.history_target(config)
        try:
            reply: Any = self._history(keys=self.keys_for(thread_id), args=[*target, *channels])
        except redis.RedisError as exc:
            raise self._fail("get_delta_channel_history", exc) from exc
        return self.decode_history(reply, thread_id, channels)

    def turn_lock_probe(self, thread_id: str) -> None:
        """Take and release the turn lock of ``thread_id`` once (setup's permission probe)."""
        keys = self.keys_for(thread_id)
        token, _ = self._acquire(keys=keys, args=[1000, 0])
        self._release(keys=keys, args=[token, 0])

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

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """``delete_for_runs`` in a worker thread."""
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """``copy_thread`` in a worker thread."""
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``prune`` in a worker thread."""
        await asyncio.to_thread(lambda: self.prune(thread_ids, strategy=strategy))

    async def adelete_checkpoints(self, thread_id: str, fields: Sequence[str]) -> None:
        """``delete_checkpoints`` in a worker thread."""
        await asyncio.to_thread(self.delete_checkpoints, thread_id, fields)

    async def aturn_lock_probe(self, thread_id: str) -> None:
        """``turn_lock_probe`` in a worker thread."""
        await asyncio.to_thread(self.turn_lock_probe, thread_id)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """``get_delta_channel_history`` in a worker thread."""
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)
        )
