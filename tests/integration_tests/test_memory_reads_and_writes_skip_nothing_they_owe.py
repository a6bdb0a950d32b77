"""What the savers skip on a real Redis never changes a result: reads that skip messages the
saver holds decoded, copies that protect the cache, and puts that skip messages a stored blob
guarantees.

Every test checks what a read returns against what was written (or against a fresh saver
without caches), never timing.
"""

from __future__ import annotations

from typing import Any

import redis
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from streamagent.memory import AsyncRedisSaver, RedisSaver
from streamagent.memory._decode import parse_read
from tests._support.checkpoints import checkpoint
from tests.redis_fixtures import *  # noqa: F403


def _message(i: int) -> BaseMessage:
    cls = HumanMessage if i % 2 == 0 else AIMessage
    return cls(f"message {i} " * 30, id=f"m{i}", additional_kwargs={"n": [i]}, response_metadata={})


def _put_history(saver: RedisSaver, thread: str, sizes: range) -> list[BaseMessage]:
    """One checkpoint per size, each the previous history plus one message."""
    cfg: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    history: list[BaseMessage] = []
    prev = None
    for step in sizes:
        history = [*history, _message(step)]
        ck = checkpoint(step, history, saver, prev)
        prev = ck["channel_versions"]["messages"]
        cfg = saver.put(cfg, ck, {"step": step}, dict(ck["channel_versions"]))
    return history


def _latest(saver: RedisSaver, thread: str) -> list[BaseMessage]:
    got = saver.get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ""}})
    assert got is not None
    return list(got.checkpoint["channel_values"]["messages"])


def _mutate_all(messages: list[BaseMessage]) -> None:
    for message in messages:
        message.additional_kwargs["n"].append("poison")
        message.additional_kwargs["new"] = 1
        message.response_metadata["x"] = 1
        message.content = "poison"
        message.id = "poison"


def test_mutating_what_a_read_returned_never_changes_later_reads(
    make_saver: Any, key_prefix: str
) -> None:
    saver = make_saver("sync")
    written = _put_history(saver, "t", range(6))
    first = _latest(saver, "t")
    assert first == written and all(a is not b for a, b in zip(first, written, strict=True))
    _mutate_all(first)  # what a careless node could do to state it got from a checkpoint
    second = _latest(saver, "t")
    assert second == written
    _mutate_all(second)
    assert _latest(saver, "t") == written
    fresh = make_saver("sync", key_prefix=key_prefix, message_cache_bytes=0)
    assert _latest(fresh, "t") == written


def test_a_read_does_not_fetch_messages_the_saver_holds_decoded(
    make_saver: Any, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync")
    _put_history(saver, "t", range(5))
    _latest(saver, "t")
    held = saver.held_messages("t")
    assert len(held) == 5
    keys = saver.keys_for("t")
    reply = parse_read(
        saver._drive(saver._read_reply_op("t", saver.read_args([("", "")], held))), 1
    )
    assert reply.refs == "" and reply.values == []  # nothing sent back
    reply = parse_read(saver._drive(saver._read_reply_op("t", saver.read_args([("", "")]))), 1)
    assert len(reply.values) == 5 and all(reply.values)
    # one more message: only that one is fetched, the list still reads back whole
    written = _put_history(saver, "t2", range(5))
    _latest(saver, "t2")
    cfg: Any = {"configurable": {"thread_id": "t2", "checkpoint_ns": ""}}
    more = [*written, _message(99)]
    ck = checkpoint(99, more, saver, None)
    saver.put(cfg, ck, {}, dict(ck["channel_versions"]))
    held = saver.held_messages("t2")
    reply = parse_read(
        saver._drive(saver._read_reply_op("t2", saver.read_args([("", "")], held))), 1
    )
    assert len(reply.values) == 1
    assert _latest(saver, "t2") == more
    assert sync_client.hlen(keys.msgs) == 5


def test_reads_after_a_thread_is_deleted_and_rewritten_return_the_new_messages(
    make_saver: Any,
) -> None:
    saver = make_saver("sync")
    _put_history(saver, "t", range(4))
    _latest(saver, "t")
    saver.delete_thread("t")
    assert saver.held_messages("t") == {}
    assert saver.get_tuple({"configurable": {"thread_id": "t"}}) is None
    written = _put_history(saver, "t", range(10, 13))
    assert _latest(saver, "t") == written


def test_a_put_whose_previous_list_is_gone_stores_every_message(
    make_saver: Any, key_prefix: str
) -> None:
    for keep_last in (None, 1):
        writer = make_saver("sync", keep_last=keep_last)
        other = make_saver("sync", key_prefix=key_prefix)
        thread = f"t-{keep_last}"
        history = _put_history(writer, thread, range(4))
        other.delete_thread(thread)  # another process deletes the thread under the writer
        cfg: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        more = [*history, _message(50)]
        ck = checkpoint(50, more, writer, None)
        writer.put(cfg, ck, {}, dict(ck["channel_versions"]))
        fresh = make_saver("sync", key_prefix=key_prefix, message_cache_bytes=0)
        assert _latest(fresh, thread) == more


def test_keep_last_puts_skip_checks_and_keep_every_referenced_message(
    make_saver: Any, key_prefix: str, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync", keep_last=1)
    written = _put_history(saver, "t", range(12))
    fresh = make_saver("sync", key_prefix=key_prefix, message_cache_bytes=0)
    assert _latest(fresh, "t") == written
    assert sync_client.hlen(saver.keys_for("t").msgs) == 12  # one copy of each, none lost
    assert sync_client.hlen(saver.keys_for("t").cp) == 1


async def test_async_saver_reads_are_copies_and_agree_with_the_sync_saver(
    make_saver: Any, key_prefix: str
) -> None:
    sync_saver = make_saver("sync")
    written = _put_history(sync_saver, "t", range(5))
    saver: AsyncRedisSaver = make_saver("async")
    try:
        await saver.asetup()
        cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        for _ in range(3):
            got = await saver.aget_tuple(cfg)
            assert got is not None
            messages = got.checkpoint["channel_values"]["messages"]
            assert messages == written
            _mutate_all(messages)
        assert len(saver.held_messages("t")) == 5
        more = [*written, _message(7)]
        ck = checkpoint(7, more, saver, None)
        await saver.aput(cfg, ck, {}, dict(ck["channel_versions"]))
        got = await saver.aget_tuple(cfg)
        assert got is not None and got.checkpoint["channel_values"]["messages"] == more
        assert _latest(make_saver("sync", message_cache_bytes=0), "t") == more
    finally:
        await saver.client.aclose()


def test_long_histories_are_written_and_read_in_bounded_command_chunks(
    make_saver: Any, key_prefix: str, sync_client: redis.Redis
) -> None:
    saver = make_saver("sync")
    history = [HumanMessage(f"m{i}", id=f"id{i}") for i in range(2_600)]
    ck = checkpoint(0, history, saver, None)
    cfg: Any = {"configurable": {"thread_id": "long", "checkpoint_ns": ""}}
    saver.put(cfg, ck, {}, dict(ck["channel_versions"]))
    assert sync_client.hlen(saver.keys_for("long").msgs) == 2_600
    fresh = make_saver("sync", key_prefix=key_prefix, message_cache_bytes=0)
    assert _latest(fresh, "long") == history
    assert _latest(saver, "long") == history


def test_held_reads_fetch_only_new_messages_for_windows_reorders_and_removals(
    make_saver: Any, key_prefix: str
) -> None:
    saver = make_saver("sync")
    fresh = make_saver("sync", key_prefix=key_prefix, message_cache_bytes=0)
    cfg: Any = {"configurable": {"thread_id": "w", "checkpoint_ns": ""}}
    base = [_message(i) for i in range(6)]
    shapes = [
        [*base[1:], _message(10)],  # sliding window: one new message
        list(reversed(base)),  # same messages, other order
        [base[0], base[3], _message(11)],  # removals plus one new
        [_message(12), *base],  # prepend
    ]
    for step, shape in enumerate(shapes):
        ck = checkpoint(step, base, saver, None)
        cfg = saver.put(cfg, ck, {}, dict(ck["channel_versions"]))
        assert _latest(saver, "w") == base  # holds the base messages
        ck = checkpoint(100 + step, shape, saver, None)
        cfg = saver.put(cfg, ck, {}, dict(ck["channel_versions"]))
        held = saver.held_messages("w")
        reply = parse_read(
            saver._drive(saver._read_reply_op("w", saver.read_args([("", "")], held))), 1
        )
        new = [m for m in shape if m not in base]
        assert len(reply.values) == len(new), shape
        assert _latest(saver, "w") == shape
        assert _latest(fresh, "w") == shape
