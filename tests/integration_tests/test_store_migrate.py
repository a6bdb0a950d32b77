"""Importing langchain-community RedisChatMessageHistory sessions into streamagent threads:
real histories written by langchain-community's class, a real saver, the real CLI process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from streamagent import astream_chunks, build_agent
from streamagent.errors import InvalidInputError, MemoryUnavailable
from streamagent.memory import ConversationManager, MemoryConfig, RedisSaver
from streamagent.memory.migrate import _history_class, import_chat_histories
from tests.conftest import config_for
from tests.redis_fixtures import delete_prefix
from tests.redis_fixtures import test_redis_url as redis_url_for_tests


@pytest.fixture
def source() -> Iterator[tuple[str, str]]:
    """(url, key prefix) of a Redis holding two langchain-community histories."""
    url = redis_url_for_tests()
    prefix = f"lcmsg-{uuid.uuid4().hex[:8]}:"
    history_class = _history_class()
    alice = history_class("alice", url=url, key_prefix=prefix)
    alice.add_messages(
        [SystemMessage("be brief"), HumanMessage("my name is Alice"), AIMessage("Hi Alice!")]
    )
    bob = history_class("bob", url=url, key_prefix=prefix)
    bob.add_messages([HumanMessage("I like tea"), AIMessage("Noted: tea.")])
    yield url, prefix
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()
    alice.redis_client.close()
    bob.redis_client.close()


@pytest.fixture
def saver() -> Iterator[RedisSaver]:
    client = redis.Redis.from_url(redis_url_for_tests())
    prefix = f"satest-{uuid.uuid4().hex[:10]}"
    saver = RedisSaver(client, key_prefix=prefix)
    saver.setup()
    yield saver
    delete_prefix(client, prefix)
    client.close()


def _contents(saver: RedisSaver, thread: str) -> list[tuple[str, Any]]:
    messages = ConversationManager(MemoryConfig(max_messages=None, max_tokens=None), saver=saver)
    return [(m.type, m.content) for m in messages.get_conversation_sync(thread)]


def test_import_is_faithful_idempotent_and_incremental(
    source: tuple[str, str], saver: RedisSaver
) -> None:
    url, prefix = source
    report = import_chat_histories(
        source_url=url, saver=saver, key_prefix=prefix, thread_prefix="lc-"
    )
    assert [(h.session_id, h.thread_id, h.imported) for h in report.histories] == [
        ("alice", "lc-alice", 3),
        ("bob", "lc-bob", 2),
    ]
    assert report.summary() == "2 histories: 5 messages imported, 0 already present"
    assert _contents(saver, "lc-alice") == [
        ("system", "be brief"),
        ("human", "my name is Alice"),
        ("ai", "Hi Alice!"),
    ]
    again = import_chat_histories(
        source_url=url, saver=saver, key_prefix=prefix, thread_prefix="lc-"
    )
    assert (again.imported, again.already_present) == (0, 5)
    _history_class()("bob", url=url, key_prefix=prefix).add_message(HumanMessage("and coffee"))
    third = import_chat_histories(
        source_url=url, saver=saver, key_prefix=prefix, session_ids=["bob"], thread_prefix="lc-"
    )
    assert [(h.imported, h.already_present) for h in third.histories] == [(1, 2)]
    assert _contents(saver, "lc-bob")[-1] == ("human", "and coffee")


def test_dry_run_writes_nothing(source: tuple[str, str], saver: RedisSaver) -> None:
    url, prefix = source
    report = import_chat_histories(source_url=url, saver=saver, key_prefix=prefix, dry_run=True)
    assert report.imported == 5 and "would be imported" in report.summary()
    assert _contents(saver, "alice") == []


def test_a_corrupt_history_imports_nothing(source: tuple[str, str], saver: RedisSaver) -> None:
    url, prefix = source
    client = redis.Redis.from_url(url)
    client.lpush(f"{prefix}zed", "{not json")
    client.close()
    with pytest.raises(InvalidInputError, match="zed"):
        import_chat_histories(source_url=url, saver=saver, key_prefix=prefix)
    assert _contents(saver, "alice") == [] and _contents(saver, "bob") == []


def test_unreachable_source_is_a_run_time_error(saver: RedisSaver) -> None:
    with pytest.raises(MemoryUnavailable, match="nothing was imported"):
        import_chat_histories(source_url="redis://127.0.0.1:1/0", saver=saver)


async def test_the_agent_continues_an_imported_conversation(
    source: tuple[str, str], saver: RedisSaver, make_server: Any
) -> None:
    url, prefix = source
    import_chat_histories(source_url=url, saver=saver, key_prefix=prefix)
    server = make_server(["Your name is Alice."])
    agent = build_agent(config=config_for(server), checkpointer=saver, store=False)
    chunks = [c async for c in astream_chunks(agent, "what is my name?", thread_id="alice")]
    assert chunks[-1].type == "done"
    sent = [m["content"] for m in server.requests[0].messages]
    assert sent == ["be brief", "my name is Alice", "Hi Alice!", "what is my name?"]


def test_cli_imports_and_reports(source: tuple[str, str]) -> None:
    url, prefix = source
    dest = f"satest-{uuid.uuid4().hex[:10]}"
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "REDIS_URL": url}
    cmd = [sys.executable, "-m", "streamagent.cli", "import-chat-history", "--source-url", url,
           "--key-prefix", prefix, "--thread-prefix", f"{dest}-", "--json"]  # fmt: skip
    try:
        first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)
        rows = json.loads(first.stdout)["histories"]
        assert [(r["session_id"], r["imported"]) for r in rows] == [("alice", 3), ("bob", 2)]
        second = subprocess.run(
            cmd[:-1], env=env, capture_output=True, text=True, timeout=60, check=True
        )
        assert "0 messages imported, 5 already present" in second.stdout
        bad = subprocess.run(
            [*cmd[:5], "redis://127.0.0.1:1/0"], env=env, capture_output=True, text=True, timeout=60
        )
        assert (
            bad.returncode == 2
            and "nothing was imported" in bad.stderr
            and "Traceback" not in bad.stderr
        )
    finally:
        client = redis.Redis.from_url(url)
        saver = RedisSaver(client)
        for name in ("alice", "bob"):
            saver.delete_thread(f"{dest}-{name}")
        client.close()
