"""The maintenance operations of the savers, sans I/O: ``setup`` (with the schema migration
and the permission probe), deletion, ``copy_thread``, ``prune`` and the turn lock's scripts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from streamagent.errors import ConfigurationError, MemoryUnavailable
from streamagent.memory._core import ClientT, text
from streamagent.memory._errors import check_server_version
from streamagent.memory._lua import (
    ACQUIRE,
    DELETE_CHECKPOINTS,
    DELETE_THREAD,
    DUMP,
    MIGRATE,
    PRUNE,
    RELEASE,
    RESTORE,
)
from streamagent.memory._protocol import Batch, Blocking, Command, Op
from streamagent.memory._reads import ReadOps
from streamagent.memory._setup import (
    SCHEMA_VERSION,
    Probe,
    check_eviction_mode,
    check_schema,
    eviction_problem,
    handle_eviction,
    migrate_args,
    one_node,
    permission_error,
    plain_port_answers,
    tls_mismatch,
)
from streamagent.memory._writes import WriteOps

__all__ = ["PRUNE_STRATEGIES", "AdminOps"]

logger = logging.getLogger(__name__)

PRUNE_STRATEGIES = ("keep_latest", "delete")


class AdminOps(ReadOps[ClientT], WriteOps[ClientT]):
    """Set-up, deletion, copy, prune and the turn lock."""

    # ------------------------------------------------------------------ setup
    def _setup_op(self, *, eviction: str) -> Op[None]:
        """See ``RedisSaver.setup``."""
        check_eviction_mode(eviction)
        tls = self._tls_endpoint
        if tls is not None and (yield Blocking(plain_port_answers, tls)):
            raise tls_mismatch(self._where)
        try:
            server = yield Command(("INFO", "server"))
            check_server_version(one_node(server), self._where)
            memory = yield Command(("INFO", "memory"))
            problem = eviction_problem(one_node(memory), self.ttl_seconds)
            yield Command(("SET", self.schema_key(), SCHEMA_VERSION, "NX"))
            stored = yield Command(("GET", self.schema_key()))
            if stored in ("1", b"1"):
                stored = yield from self._migrate_op()
        except RedisError as exc:
            raise permission_error(self._where, exc) or self._fail("setup", exc) from exc
        check_schema(stored, self.key_prefix)
        handle_eviction(problem, eviction, self._where)
        yield from self._probe_op()

    def _migrate_op(self) -> Op[str]:
        """Migrate every thread of a schema-1 prefix to schema 2 (see ``migrate.lua``).
        Stop writers of older streamagent versions first: their writes keep no head."""
        threads = yield from self._thread_ids_op(None, "setup")
        for thread_id in threads:
            keys = self.keys_for(thread_id)
            records = yield Command(("HGETALL", keys.cp))
            args = migrate_args(records, self.expiry_notice_seconds)
            yield from self._script(MIGRATE, thread_id, args)
        yield Command(("SET", self.schema_key(), SCHEMA_VERSION))
        logger.warning(
            "migrated %d threads under key prefix %r to storage schema %s",
            len(threads),
            self.key_prefix,
            SCHEMA_VERSION,
        )
        return SCHEMA_VERSION

    def _probe_steps(self, probe: Probe) -> list[tuple[str, Op[Any]]]:
        meta: Any = {"source": "input", "step": -1}
        listing = self._list_op(probe.config, filter=None, before=None, limit=None)
        return [
            ("put", self._put_op(probe.config, probe.checkpoint, meta, {"messages": "1"})),
            ("put_writes", self._put_writes_op(probe.stored, probe.writes, "probe-task", "")),
            ("get_tuple", self._get_tuple_op(probe.config)),
            ("list", listing),
            ("get_delta_channel_history", self._history_op(probe.stored, ["messages"])),
            ("copy_thread", self._copy_thread_op(probe.thread, probe.copy)),
            ("prune", self._prune_op([probe.copy], strategy="keep_latest")),
            ("delete_for_runs", self._delete_checkpoints_op(probe.copy, [probe.field])),
            ("turn lock", self._turn_lock_probe_op(probe.thread)),
            ("delete_thread", self._delete_thread_op(probe.thread)),
        ]

    def _probe_op(self) -> Op[None]:
        """Run every script and command the saver uses on a probe thread of its own key
        prefix (then delete it): a missing ACL permission is a ConfigurationError naming it."""
        probe = Probe()
        try:
            for name, step in self._probe_steps(probe):
                try:
                    yield from step
                except MemoryUnavailable as exc:
                    cause = exc.__cause__ or exc
                    raise permission_error(self._where, cause, name) or exc from cause
                except RedisError as exc:
                    denied = permission_error(self._where, exc, name)
                    raise denied or self._fail("setup", exc) from exc
        finally:
            thread, copy = self.keys_for(probe.thread), self.keys_for(probe.copy)
            try:  # one DEL per thread: each thread's keys share one Cluster slot
                yield Batch((("DEL", *thread), ("DEL", *copy)))
            except RedisError:
                logger.warning("could not delete the setup probe's keys", exc_info=True)
            self.forget_thread(probe.thread)
            self.forget_thread(probe.copy)

    # ------------------------------------------------------------------ deletion
    def _delete_thread_op(self, thread_id: str) -> Op[None]:
        """Delete the thread's data, leaving a short "deleted" tombstone."""
        thread_id = str(thread_id)
        args = [self.expiry_notice_seconds]
        yield from self._script(DELETE_THREAD, thread_id, args, "delete_thread")
        self.forget_thread(thread_id)

    def _delete_checkpoints_op(self, thread_id: str, fields: Sequence[str]) -> Op[None]:
        """Delete checkpoints (``"ns\\0id"`` fields) of a thread with their writes."""
        thread_id = str(thread_id)
        args = [self._ttl, self.expiry_notice_seconds, *fields]
        reply = yield from self._script(DELETE_CHECKPOINTS, thread_id, args, "delete_for_runs")
        self.forget_thread(thread_id)
        self.check_write(reply, thread_id)

    def _delete_for_runs_op(self, run_ids: Sequence[str]) -> Op[None]:
        """Delete the checkpoints of ``run_ids`` on every thread of the prefix (a SCAN)."""
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        for thread_id in (yield from self._thread_ids_op(None, "delete_for_runs")):
            read = Command(("HGETALL", self.keys_for(thread_id).cp))
            records = yield from self._call(read, "delete_for_runs")
            fields = [f for f, rec in records.items() if self.run_id_of(rec) in wanted]
            if fields:
                yield from self._delete_checkpoints_op(thread_id, fields)

    # ------------------------------------------------------------------ copy, prune
    def _copy_thread_op(self, source_thread_id: str, target_thread_id: str) -> Op[None]:
        """One consistent snapshot of the source (``DUMP`` in one script), restored in one
        script over the target."""
        source, target = str(source_thread_id), str(target_thread_id)
        reply = yield from self._script(DUMP, source, [], "copy_thread")
        status = text(reply[0])
        if status:
            self.absent(status, source, 0)
            return
        args = [self._ttl, self.expiry_notice_seconds, *(p or b"" for p in reply[1:])]
        restored = yield from self._script(RESTORE, target, args, "copy_thread")
        self.forget_thread(target)
        self.check_write(restored, target)
        self.remember_thread(target)

    def _prune_op(self, thread_ids: Sequence[str], *, strategy: str) -> Op[None]:
        """``keep_latest``: each namespace keeps only its head; ``delete``: no thread left."""
        if strategy not in PRUNE_STRATEGIES:
            raise ConfigurationError(f"unknown prune strategy {strategy!r}")
        for thread_id in map(str, thread_ids):
            if strategy == "delete":
                yield from self._delete_thread_op(thread_id)
                continue
            args = [self._ttl, self.expiry_notice_seconds]
            reply = yield from self._script(PRUNE, thread_id, args, "prune")
            self.forget_thread(thread_id)
            self.check_write(reply, thread_id)

    # ------------------------------------------------------------------ turn lock
    def _acquire_turn_op(self, thread_id: str, *, lease_ms: int, marker_ms: int) -> Op[Any]:
        """Take the turn lock of ``thread_id``: ``(token, 0)`` or ``(holder, its pttl ms)``
        (Redis failures raise as they are)."""
        token, busy_ms = yield from self._script(ACQUIRE, thread_id, [lease_ms, marker_ms])
        return text(token), int(busy_ms)

    def _release_turn_op(self, thread_id: str, token: str, *, lease_ms: int = 0) -> Op[bool]:
        """Renew (``lease_ms``) or release (0) the lock; False when ``token`` lost it."""
        held = yield from self._script(RELEASE, thread_id, [token, lease_ms])
        return bool(held)

    def _turn_lock_probe_op(self, thread_id: str) -> Op[None]:
        token, _ = yield from self._acquire_turn_op(thread_id, lease_ms=1000, marker_ms=0)
        yield from self._release_turn_op(thread_id, token)
