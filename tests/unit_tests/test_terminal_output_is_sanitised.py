"""Text from the model or a tool reaches the terminal inert: no control sequence a terminal
obeys, no markup rich interprets (the sanitiser and the CLI printer)."""

from __future__ import annotations

import pytest
from rich.console import Console

from streamagent.cli.terminal import safe_markup, safe_text


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


def test_the_cli_printer_shows_hostile_text_literally(capsys):
    from streamagent.cli.printer import ChunkPrinter
    from streamagent.streaming import StreamChunk

    printer = ChunkPrinter(json_lines=False)
    printer(StreamChunk(type="content", content="a :warning: [b]x[/b] \x1b[2J"))
    printer(StreamChunk(type="error", error={"type": "X", "message": "bad [/] :smile:"}))
    out = capsys.readouterr().out
    assert "a :warning: [b]x[/b] \\x1b[2J" in out
    assert "bad [/] :smile:" in out and "\x1b" not in out
