"""Issue #19's pure parts: the terminal sanitiser, the input policy, the retry decision."""

from __future__ import annotations

import httpx2
import openai
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from rich.console import Console

from streamagent._terminal import safe_markup, safe_text
from streamagent.config import RetryConfig
from streamagent.errors import InvalidInputError, ModelUnavailableError, RateLimitedError
from streamagent.input_policy import check_messages, check_thread_id, is_invisible
from streamagent.retry import RetryPolicy, classify_error, endpoint_of


# --------------------------------------------------------------------------- terminal
@pytest.mark.parametrize(
    "attack",
    [
        "\x1b]52;c;ZXZpbA==\x07",  # OSC 52: write the clipboard
        "\x1b]8;;http://evil\x1b\\x\x1b]8;;\x1b\\",  # OSC 8: a link lying about its target
        "\x1b[8m",  # SGR 8: hidden text
        "\x1b[2J\x1b[H",  # clear the screen
        "\x9b2J",  # C1 CSI
        "\x1bP+q\x1b\\",  # DCS
        "ok\rFAKE",  # overwrite the line
        "\u202egnp.exe",  # bidi override
        "\x00\x08\x7f",
    ],
)
def test_safe_text_leaves_no_character_a_terminal_obeys(attack):
    shown = safe_text(attack)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown
    assert shown.replace("\\", "") != attack.replace("\\", "")  # something was made visible


def test_safe_text_keeps_ordinary_text_and_newlines():
    text = "Grüße, 世界! 🎉 tabs\tand\nlines — fine"
    assert safe_text(text) == text
    assert safe_text("a\nb\tc", newlines=False) == "a\\nb\\tc"


def test_safe_markup_prints_markup_literally_through_rich():
    console = Console(record=True, width=200, color_system=None)
    console.print(f"[red]x[/] {safe_markup('[/] [bold]y[/bold] [link=http://e]z')}")
    assert console.export_text().strip() == "x [/] [bold]y[/bold] [link=http://e]z"


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


# --------------------------------------------------------------------------- retry
def _rate_limited(wait: float | None) -> RateLimitedError:
    return RateLimitedError("429", retry_after_seconds=wait)


def test_a_server_wait_above_max_delay_is_not_retried():
    policy = RetryPolicy(RetryConfig(max_delay_seconds=30, jitter=False))
    assert policy.retries(_rate_limited(None))
    assert policy.retries(_rate_limited(30))
    assert not policy.retries(_rate_limited(30.5))
    assert _rate_limited(3600).retryable is True
    assert policy.delay_seconds(_rate_limited(12), attempt=1) == 12
    assert _rate_limited(3600).to_dict()["retry_after_seconds"] == 3600


def test_classify_keeps_an_already_classified_error_and_names_the_endpoint():
    error = ModelUnavailableError("x")
    assert classify_error(error) is error
    request = httpx2.Request("POST", "https://u:pw@api.example:8443/v1/chat/completions?key=s")
    connection = classify_error(openai.APIConnectionError(request=request))
    assert "https://api.example:8443/v1/chat/completions" in connection.message
    assert "pw" not in connection.message and "key=s" not in connection.message
    assert endpoint_of(ValueError("no request")) is None


def test_the_cli_printer_shows_hostile_text_literally(capsys):
    from streamagent.cli import ChunkPrinter
    from streamagent.streaming import StreamChunk

    printer = ChunkPrinter(json_lines=False)
    printer(StreamChunk(type="content", content="a :warning: [b]x[/b] \x1b[2J"))
    printer(StreamChunk(type="error", error={"type": "X", "message": "bad [/] :smile:"}))
    out = capsys.readouterr().out
    assert "a :warning: [b]x[/b] \\x1b[2J" in out
    assert "bad [/] :smile:" in out and "\x1b" not in out
