"""Pure parts of the Redis savers: keys, plans, list ordering, strict serde, config (no I/O:
the savers are built on clients that never connect)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from pydantic import BaseModel

from streamagent.errors import ConfigurationError
from streamagent.memory import (
    MemoryConfig,
    RedisSaver,
    StrictSerializer,
    UnsafeDeserializationError,
)
from streamagent.memory._reads import list_targets
from streamagent.memory.base import FULL_EVERY
from streamagent.memory.keys import KEY_KINDS, thread_keys


class Opaque(BaseModel):
    x: int = 1


def _saver(**options: Any) -> RedisSaver:
    """A saver whose client never connects (every test here is pure logic)."""
    return RedisSaver(redis.Redis(port=1), **options)


def _hash_tag(key: str) -> str:
    start = key.index("{")
    return key[start + 1 : key.index("}", start)]


def test_all_keys_of_a_thread_share_one_hash_tag() -> None:
    for thread in ("t1", "a:b", "we{ird", "sp ace"):
        keys = thread_keys("sa", thread)
        assert len(keys) == 11
        assert len({_hash_tag(k) for k in keys}) == 1
        assert [getattr(keys, kind) for kind in KEY_KINDS] == list(keys)
        assert keys.data == tuple(keys)[:9] and keys.seen not in keys.data


def _plan(saver: RedisSaver, messages: list[Any], version: str, parent: str | None = None) -> Any:
    ck = empty_checkpoint()
    ck["channel_values"] = {"messages": messages, "n": 1}
    ck["channel_versions"] = {"messages": version, "n": "1"}
    cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    if parent:
        cfg["configurable"]["checkpoint_id"] = parent
    return saver.plan_put(cfg, ck, {"source": "loop"}, {"messages": version, "n": "1"})


def test_messages_are_stored_by_ref_and_appends_become_deltas() -> None:
    saver = _saver()
    history = [HumanMessage("hi", id="1"), AIMessage("yo", id="2")]
    plan, returned = _plan(saver, history, "1")
    assert returned["configurable"]["thread_id"] == "t"
    assert len(plan.messages) == 2
    blob = dict(plan.blobs)["messages\x001"]
    assert blob.startswith(b"R\x00") and len(blob) == 2 + 2 * 24
    saver.remember_put(plan, full=False)
    plan2, _ = _plan(saver, [*history, HumanMessage("more", id="3")], "2")
    delta = dict(plan2.blobs)["messages\x002"]
    assert delta.startswith(b"D\x001\x00") and len(delta) == len(b"D\x001\x00") + 24
    # the stored messages are neither resent nor checked: the base blob witnesses them
    assert plan2.covered == set(plan.messages) and plan2.known == set()
    args = plan2.args()
    assert not any(v in args for v in plan.messages.values())
    assert plan2.messages[next(r for r in plan2.messages if r not in plan.messages)] in args
    full = plan2.args(full=True)
    assert all(v in full for v in plan2.messages.values())


def test_delta_chains_are_cut_every_full_every_versions_and_off_with_keep_last() -> None:
    saver = _saver()
    history: list[Any] = []
    kinds = []
    for i in range(FULL_EVERY + 2):
        history = [*history, HumanMessage(f"m{i}", id=str(i))]
        plan, _ = _plan(saver, history, str(i))
        kinds.append(dict(plan.blobs)[f"messages\x00{i}"][:1])
        saver.remember_put(plan, full=False)
    assert kinds[0] == b"R" and kinds[1] == b"D" and kinds.count(b"R") == 2
    bounded = _saver(keep_last=3)
    for i in range(3):
        plan, _ = _plan(bounded, [HumanMessage(str(j), id=str(j)) for j in range(i + 1)], str(i))
        bounded.remember_put(plan, full=False)
        assert dict(plan.blobs)[f"messages\x00{i}"][:1] == b"R"


def test_list_targets_follow_in_memory_saver_order_and_filters() -> None:
    members = ["\x00a1", "\x00a3", "\x00a2", "sub\x00a4"]
    assert list_targets(["", "sub"], members, None, None) == [
        ("", "a3"), ("", "a2"), ("", "a1"), ("sub", "a4"),
    ]  # fmt: skip
    cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    before: Any = {"configurable": {"checkpoint_id": "a3"}}
    assert list_targets(["", "sub"], members, cfg, before) == [("", "a2"), ("", "a1")]


def test_strict_serializer_keeps_safe_types_and_refuses_others() -> None:
    serde = StrictSerializer()
    value = {"m": [HumanMessage("x", id="1")], "d": Decimal("2.5")}
    assert serde.loads_typed(serde.dumps_typed(value)) == value
    with pytest.raises(UnsafeDeserializationError, match="Opaque"):
        serde.loads_typed(serde.dumps_typed(Opaque()))
    allowed = StrictSerializer(allowed_msgpack_modules=[(__name__, "Opaque")])
    assert allowed.loads_typed(allowed.dumps_typed(Opaque(x=3))) == Opaque(x=3)


def test_names_with_separator_characters_are_refused() -> None:
    saver = _saver()
    cfg: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": "a\x00b", "checkpoint_id": "c"}}
    with pytest.raises(ValueError, match="checkpoint_ns"):
        saver.plan_put_writes(cfg, [("x", 1)], "task")


def test_memory_config_validates_and_hides_password() -> None:
    with pytest.raises(ConfigurationError):
        MemoryConfig(max_messages=0)
    with pytest.raises(ConfigurationError):
        MemoryConfig(port=0)
    cfg = MemoryConfig(password="pw-123", db=2)
    assert "pw-123" not in repr(cfg)
    assert cfg.redis_url() == "redis://:pw-123@127.0.0.1:6379/2"


def test_every_lua_file_is_a_loaded_script_carrying_only_the_pieces_it_needs() -> None:
    from importlib import resources

    from streamagent.memory import _lua

    root = resources.files("streamagent.memory") / "lua"
    files = {p.name.removesuffix(".lua") for p in root.iterdir() if p.name.endswith(".lua")}
    pieces = {p.name.removesuffix(".lua") for p in (root / "lib").iterdir()}
    assert files == set(_lua.NAMES) and pieces == set(_lua.LIBRARY)
    scripts = {name: getattr(_lua, name.upper()) for name in _lua.NAMES}
    for name, script in scripts.items():
        assert script.name == name and script.text.startswith("-- needs:")
        assert script.text.endswith((root / f"{name}.lua").read_text())
    # the thread's keys by name first, everywhere; gc code only where checkpoints are removed
    keys = (root / "lib" / "keys.lua").read_text()
    assert all(s.text.startswith(keys) for s in scripts.values())
    with_gc = {n for n, s in scripts.items() if "local function collect_garbage" in s.text}
    assert with_gc == {"put", "delete_checkpoints", "prune"}


def test_script_calls_are_packed_exactly_as_redis_py_packs_them() -> None:
    from streamagent.memory._protocol import pack_command

    args = ("EVALSHA", "a" * 40, 11, "ké🙂", b"\x00\r\n", b"", 0, -3, 2.5, b"x" * 70_000)
    assert pack_command(args) == b"".join(redis.Connection().pack_command(*args))
    with pytest.raises(TypeError, match="bool"):
        pack_command(("SET", "k", True))
