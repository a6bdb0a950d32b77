"""The savers' message caches and the put shortcuts (pure parts, no I/O).

Reads keep deserialized messages as templates and hand out copies; these tests prove a caller
can never change a template through what it got, that the cache is bounded and never serves
a message to a serializer that did not decode it, and that puts skip only what a blob that
must still exist guarantees.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.base import empty_checkpoint

from streamagent.errors import ConfigurationError
from streamagent.memory import RedisSaver, StrictSerializer
from streamagent.memory.serde import DecodeCache, MessageTemplate, copy_message


def _rich_messages() -> list[Any]:
    return [
        HumanMessage(
            [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}],
            id="h1",
            additional_kwargs={"tags": ["a"]},
            name="user",
        ),
        AIMessage(
            "calling",
            id="a1",
            tool_calls=[{"name": "read_file", "args": {"path": "x"}, "id": "c1"}],
            response_metadata={"model": "m", "nested": {"k": [1]}},
            usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        ),
        ToolMessage("out", tool_call_id="c1", id="t1", artifact={"rows": [1, 2]}),
        AIMessage("extra", id="x1", custom_field={"deep": [1]}),  # type: ignore[call-arg]
    ]


def _mutate(message: Any) -> None:
    """Every in-place change a node could make to a message it got from a checkpoint."""
    if isinstance(message.content, list):
        message.content.append({"type": "text", "text": "injected"})
        message.content[0]["text"] = "changed"
    message.additional_kwargs["injected"] = True
    for value in message.additional_kwargs.values():
        if isinstance(value, list):
            value.append("injected")
    message.response_metadata.setdefault("nested", {})["k"] = "changed"
    if isinstance(message, AIMessage):
        for call in message.tool_calls:
            call["args"]["path"] = "/etc/passwd"
        message.tool_calls.append({"name": "x", "args": {}, "id": "c9"})
        if message.usage_metadata:
            message.usage_metadata["input_tokens"] = 999
    if isinstance(message, ToolMessage):
        message.artifact["rows"].append(3)
    extra = message.__pydantic_extra__ or {}
    for value in extra.values():
        if isinstance(value, dict):
            value["deep"].append(2)
    message.id = "changed"
    message.content = "replaced"


def test_copy_message_shares_no_mutable_object_with_its_template() -> None:
    for template in _rich_messages():
        pristine = copy.deepcopy(template)
        clone = copy_message(template)
        assert clone == template and type(clone) is type(template) and clone is not template
        assert clone.model_dump() == pristine.model_dump()
        _mutate(clone)
        assert template == pristine
        assert template.model_dump() == pristine.model_dump()


def test_a_template_gives_pristine_copies_after_earlier_copies_were_mutated() -> None:
    for message in _rich_messages():
        pristine = copy.deepcopy(message)
        template = MessageTemplate(message)
        for _ in range(3):
            clone = template.copy()
            assert clone == pristine and clone.model_dump() == pristine.model_dump()
            assert clone.model_fields_set == pristine.model_fields_set
            _mutate(clone)
        assert template.message == pristine


def test_decode_cache_is_bounded_by_stored_bytes_and_keeps_recent_entries() -> None:
    serde = StrictSerializer()
    cache = DecodeCache(max_bytes=250)
    for i in range(5):
        cache.put(serde, f"r{i}", HumanMessage(str(i), id=str(i)), 100)
        cache.templates(serde, ["r0"])  # r0 stays recently used
    assert len(cache) == 2
    assert set(cache.templates(serde, [f"r{i}" for i in range(5)])) == {"r0", "r4"}
    cache.put(serde, "huge", HumanMessage("h", id="h"), 251)
    assert "huge" not in cache.templates(serde, ["huge"])
    cache.clear()
    assert len(cache) == 0


def _saver(**options: Any) -> RedisSaver:
    """A saver whose client never connects (these tests are pure logic)."""
    return RedisSaver(redis.Redis(port=1), **options)


def test_decode_cache_serves_only_the_serializer_that_decoded_the_entry() -> None:
    strict, other = StrictSerializer(), StrictSerializer()
    cache = DecodeCache(max_bytes=1_000)
    cache.put(other, "r", HumanMessage("x", id="1"), 10)
    assert cache.templates(strict, ["r"]) == {}
    assert set(cache.templates(other, ["r"])) == {"r"}


def test_a_saver_cloned_with_an_allowlist_does_not_reuse_the_original_templates() -> None:
    saver = _saver()
    clone = saver.with_allowlist([("some.module", "Thing")])
    assert clone.serde is not saver.serde
    saver._decoded.put(saver.serde, "r", HumanMessage("x", id="1"), 10)
    assert clone._decoded.templates(clone.serde, ["r"]) == {}


def test_message_cache_size_is_validated_and_zero_disables_held_reads() -> None:
    with pytest.raises(ConfigurationError, match="message_cache_bytes"):
        _saver(message_cache_bytes=-1)
    off = _saver(message_cache_bytes=0)
    assert off.held_messages("t") == {}
    assert off.read_args([("", "")]) == [0, off.expiry_notice_seconds, "", "", ""]


def _plan(saver: RedisSaver, messages: list[Any], version: str) -> Any:
    ck = empty_checkpoint()
    ck["channel_values"] = {"messages": messages}
    ck["channel_versions"] = {"messages": version}
    cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    return saver.plan_put(cfg, ck, {"source": "loop"}, {"messages": version})[0]


def _count_args(plan: Any, *, full: bool = False) -> tuple[int, int, int, int]:
    args = plan.args(full=full)
    nblobs, nsent, ncheck, nbases = args[8:12]
    assert len(args) == 12 + 2 * nblobs + 2 * nsent + ncheck + nbases
    return nblobs, nsent, ncheck, nbases


@pytest.mark.parametrize("keep_last", [None, 2])
def test_puts_skip_only_messages_the_previous_list_guarantees(keep_last: int | None) -> None:
    saver = _saver(keep_last=keep_last)
    history = [HumanMessage(f"m{i}", id=str(i)) for i in range(10)]
    first = _plan(saver, history, "1")
    assert _count_args(first) == (1, 10, 0, 0)  # nothing known: every message is sent
    saver.remember_put(first, full=False)
    # a second list from the first one: the first list's blob must exist (delta base or
    # witness), its messages are neither sent nor checked; the new message is sent
    second = _plan(saver, [*history[1:], HumanMessage("new", id="n")], "2")
    assert second.bases == ["messages\x001"]
    assert _count_args(second) == (1, 1, 0, 1)
    # the full form drops every shortcut: all messages sent, nothing required
    assert _count_args(second, full=True) == (1, 10, 0, 0)
    saver.remember_put(second, full=False)
    # a stored message outside the previous list is checked, not sent
    third = _plan(saver, [history[0], HumanMessage("new", id="n")], "3")
    assert _count_args(third) == (1, 0, 1, 1)
