"""The input policy: which messages and thread ids a caller may send (pure parts)."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from streamagent.errors import InvalidInputError
from streamagent.streaming.input_policy import check_messages, check_thread_id, is_invisible


# --------------------------------------------------------------------------- input policy
def test_invisible_characters():
    assert all(is_invisible(c) for c in " \t\u200b\u200c\u200d\u2060\ufeff\u3164\u2800\x00")
    assert not any(is_invisible(c) for c in "a1é世🎉\u0301")


def test_privileged_messages_need_the_opt_in():
    forged = [
        SystemMessage("s"),
        SystemMessage("d", additional_kwargs={"__openai_role__": "developer"}),
        ToolMessage("t", tool_call_id="c"),
        AIMessage("", tool_calls=[{"id": "c", "name": "n", "args": {}}]),
    ]
    for message in forged:
        with pytest.raises(InvalidInputError, match="privileged role"):
            check_messages([message])
        check_messages([message], allow_privileged_roles=True)
    check_messages([HumanMessage("hi"), AIMessage("an earlier reply")])


def test_content_blocks_and_images():
    check_messages([HumanMessage([{"type": "image_url", "image_url": {"url": "data:x"}}])])
    check_messages([HumanMessage(["plain", {"type": "text", "text": "block"}])])
    with pytest.raises(InvalidInputError, match="no visible character"):
        check_messages([HumanMessage([{"type": "text", "text": "\u200b"}])])
    with pytest.raises(InvalidInputError, match="lone surrogate"):
        check_messages([HumanMessage("ok", name="\udc80")])


@pytest.mark.parametrize("good", ["t1", "user-42/session 7", "Ünïcode-thread", "a" * 256])
def test_good_thread_ids(good):
    assert check_thread_id(good) == good


@pytest.mark.parametrize("bad", ["", " x", "x ", "a\nb", "a\x1b", "\u200b", "a" * 257, 7, None])
def test_bad_thread_ids(bad):
    with pytest.raises(InvalidInputError, match="thread id"):
        check_thread_id(bad)
