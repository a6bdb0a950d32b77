"""The write operations of the savers, sans I/O: ``put`` and ``put_writes``.

Each message of a list-of-messages value (the ``messages`` channel and the writes to it) is
stored once, in the thread's ``msgs`` hash under its ref; the value itself stores only the
refs. When a new version of a channel extends the previous version this process wrote, only
the appended refs are stored (a ``D`` value pointing at the base version, a full ``R`` value
every :data:`FULL_EVERY` versions), so a thread's storage grows linearly with its messages.

A put does not send or check the messages of the channel's previous list while that list's
blob still exists (the script checks it); messages this process stored earlier are checked,
not sent. Each shortcut falls back to sending everything, never to a weaker check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)

from streamagent._upstream.langgraph_private import DeltaSnapshot as _DeltaSnapshot
from streamagent.memory._codec import MessageEncoder, check_name, pack
from streamagent.memory._core import ClientT, SaverCore
from streamagent.memory._lua import PUT, PUT_WRITES
from streamagent.memory._protocol import Op
from streamagent.memory._state import ListKey, ListState

__all__ = ["FENCE_KEY", "FULL_EVERY", "PutPlan", "WriteOps", "WritesPlan", "fence_of"]

#: ``configurable`` key of the fencing token of the turn a run belongs to (see ``turns``)
FENCE_KEY = "__streamagent_fence"
#: a delta chain is cut (a full value stored) every this many versions
FULL_EVERY = 32


def fence_of(config: RunnableConfig) -> str:
    """The fencing token a run's writes carry (``""``: unfenced)."""
    token = (config.get("configurable") or {}).get(FENCE_KEY)
    return "" if token is None else str(token)


@dataclass
class PutPlan:
    """Arguments of one ``put.lua`` call; ``args(full=True)`` drops every shortcut.

    ``bases`` are blobs that must still exist for the shortcuts to hold: the base of each
    delta value and the previous list of each channel (its *witness*). A stored blob's
    messages are stored (they are deleted only with the last blob or write referencing them,
    and every key of a thread expires together), so the refs of ``covered`` lists are
    neither sent nor checked one by one; other refs this process stored (``known``) are
    checked, the rest are sent.
    """

    thread_id: str
    head: list[Any]
    blobs: list[tuple[str, bytes]]
    full_blobs: list[tuple[str, bytes]]
    messages: dict[str, bytes]
    bases: list[str]
    cache_updates: list[tuple[ListKey, ListState]]
    known: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)

    def args(self, *, full: bool = False) -> list[Any]:
        """The script's ``ARGV``."""
        blobs = self.full_blobs if full else self.blobs
        bases = [] if full else self.bases
        skip = set() if full else self.known | self.covered
        check = [] if full else [ref for ref in self.known if ref not in self.covered]
        sent = [(r, v) for r, v in self.messages.items() if r not in skip]
        out: list[Any] = [*self.head, len(blobs), len(sent), len(check), len(bases)]
        for suffix, value in blobs:
            out += [suffix, value]
        for ref, value in sent:
            out += [ref, value]
        return out + check + bases


@dataclass
class WritesPlan:
    """Arguments of one ``put_writes.lua`` call."""

    thread_id: str
    head: list[Any]
    writes: list[tuple[str, str, bytes]]
    messages: dict[str, bytes]
    known: set[str] = field(default_factory=set)

    def args(self, *, full: bool = False) -> list[Any]:
        """The script's ``ARGV``."""
        known = set() if full else self.known
        sent = [(r, v) for r, v in self.messages.items() if r not in known]
        out: list[Any] = [*self.head, len(self.writes), len(sent), len(known)]
        for mode, field_, value in self.writes:
            out += [mode, field_, value]
        for ref, value in sent:
            out += [ref, value]
        return out + list(known)


class WriteOps(SaverCore[ClientT]):
    """``put`` and ``put_writes``: plans (serialization) and operations."""

    # ------------------------------------------------------------------ operations
    def _put_op(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Op[RunnableConfig]:
        plan, returned = self.plan_put(config, checkpoint, metadata, new_versions)
        reply = yield from self._script(PUT, plan.thread_id, plan.args(), "put")
        full = not self.check_write(reply, plan.thread_id)
        if full:  # a delta base or message is gone (deleted/expired): send all
            reply = yield from self._script(PUT, plan.thread_id, plan.args(full=True), "put")
            self.check_write(reply, plan.thread_id)
        self.remember_put(plan, full=full)
        self.remember_thread(plan.thread_id)
        return returned

    def _put_writes_op(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> Op[None]:
        plan = self.plan_put_writes(config, writes, task_id, task_path)
        reply = yield from self._script(PUT_WRITES, plan.thread_id, plan.args(), "put_writes")
        if not self.check_write(reply, plan.thread_id):
            # a message this process stored earlier is gone (deleted/expired): send all
            args = plan.args(full=True)
            reply = yield from self._script(PUT_WRITES, plan.thread_id, args, "put_writes")
            self.check_write(reply, plan.thread_id)
        self._memory.remember_stored(plan.thread_id, plan.messages)

    def remember_put(self, plan: PutPlan, *, full: bool) -> None:
        """Record what a successful put stored: its messages, its lists as delta bases."""
        self._memory.remember_stored(plan.thread_id, plan.messages)
        self._memory.remember_lists(plan.cache_updates, full=full)

    # ------------------------------------------------------------------ plans
    def plan_put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> tuple[PutPlan, RunnableConfig]:
        """Serialize a checkpoint into script arguments and the config ``put`` returns."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        ns = check_name("checkpoint_ns", configurable.get("checkpoint_ns", ""))
        stored = checkpoint.copy()
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        record = ormsgpack.packb(
            [
                *self.serde.dumps_typed(stored),
                *self.serde.dumps_typed(get_checkpoint_metadata(config, metadata)),
                configurable.get("checkpoint_id"),
            ]
        )
        parent = check_name("checkpoint_id", str(configurable.get("checkpoint_id") or ""))
        refs = f"{parent}\x02" + "\x01".join(
            f"{check_name('channel', ch)}\x00{ver}"
            for ch, ver in checkpoint["channel_versions"].items()
        )
        messages = MessageEncoder(self._encoded)
        plan = PutPlan(
            thread_id=thread_id,
            head=[
                self._ttl,
                self.expiry_notice_seconds,
                self.keep_last or 0,
                fence_of(config),
                ns,
                check_name("checkpoint_id", checkpoint["id"]),
                record,
                refs,
            ],
            blobs=[],
            full_blobs=[],
            messages=messages.values,
            bases=[],
            cache_updates=[],
        )
        for channel, version in new_versions.items():
            self._plan_blob(plan, messages, ns=ns, channel=channel, version=version, values=values)
        # refs of the previous lists need no check (their blobs are the witnesses)
        fresh = [ref for ref in plan.messages if ref not in plan.covered]
        plan.known = self._memory.known_refs(thread_id, fresh)
        returned: RunnableConfig = {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint["id"],
            }
        }
        return plan, returned

    def _plan_blob(
        self,
        plan: PutPlan,
        messages: MessageEncoder,
        *,
        ns: str,
        channel: str,
        version: Any,
        values: dict[str, Any],
    ) -> None:
        """Add the new version of ``channel`` to ``plan`` (a delta when it can be one)."""
        suffix = f"{channel}\x00{version}"
        if channel not in values:
            plan.blobs.append((suffix, pack("empty", b"")))
            plan.full_blobs.append(plan.blobs[-1])
            return
        value = values[channel]
        if isinstance(value, _DeltaSnapshot):
            snapshot = messages.encode(self.serde, value.value)
            if snapshot is not None:
                # a DeltaChannel snapshot of messages: refs, like a list (stored once each)
                snap = pack("S", "".join(snapshot).encode())
                plan.blobs.append((suffix, snap))
                plan.full_blobs.append((suffix, snap))
                return
        encoded = messages.encode(self.serde, value)
        if encoded is None:
            packed = pack(*self.serde.dumps_typed(value))
            plan.blobs.append((suffix, packed))
            plan.full_blobs.append((suffix, packed))
            return
        list_refs = tuple(encoded)
        full = pack("R", "".join(list_refs).encode())
        plan.full_blobs.append((suffix, full))
        key = (plan.thread_id, ns, channel)
        last = self._memory.last_list(key)
        delta = self._delta(last, list_refs)
        if delta is None:
            plan.blobs.append((suffix, full))
            depth = 0
        else:
            base_version, added, depth = delta
            plan.blobs.append((suffix, pack("D", f"{base_version}\x00{added}".encode())))
        if last is not None:  # delta base or witness: its messages need no check
            plan.bases.append(f"{channel}\x00{last[0]}")
            plan.covered.update(last[1])
        plan.cache_updates.append((key, (str(version), list_refs, depth)))

    def _delta(self, last: ListState | None, refs: tuple[str, ...]) -> tuple[str, str, int] | None:
        if self.keep_last is not None or last is None:
            return None
        version, base, depth = last
        if depth + 1 >= FULL_EVERY or len(refs) <= len(base) or refs[: len(base)] != base:
            return None
        return version, "".join(refs[len(base) :]), depth + 1

    def plan_put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> WritesPlan:
        """Serialize pending writes (special writes overwrite, regular ones never do)."""
        configurable = config["configurable"]
        ns = check_name("checkpoint_ns", configurable.get("checkpoint_ns", ""))
        prefix = f"{ns}\x00{configurable['checkpoint_id']}\x00{check_name('task_id', task_id)}"
        messages = MessageEncoder(self._encoded)
        planned: list[tuple[str, str, bytes]] = []
        head = f"\x00{check_name('task_path', task_path)}\x00".encode()
        for idx, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, idx)
            refs = messages.encode(self.serde, value)
            if refs is not None:
                type_, payload = "R", "".join(refs).encode()
            else:
                type_, payload = self.serde.dumps_typed(value)
            record = type_.encode() + b"\x00" + check_name("channel", channel).encode() + head
            planned.append(
                ("1" if write_idx < 0 else "0", f"{prefix}\x00{write_idx}", record + payload)
            )
        thread_id = str(configurable["thread_id"])
        return WritesPlan(
            thread_id=thread_id,
            head=[self._ttl, self.expiry_notice_seconds, fence_of(config)],
            writes=planned,
            messages=messages.values,
            known=self._memory.known_refs(thread_id, messages.values),
        )
