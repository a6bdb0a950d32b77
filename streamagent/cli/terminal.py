"""Terminal safety for text that came from a model, a tool or a server (no I/O).

Such text may carry escape sequences a terminal obeys: OSC 52 writes the clipboard, OSC 8
makes links that lie about their target, SGR 8 hides text, ``ESC [2J`` clears the screen,
``\\r`` overwrites a line, bidi overrides reorder what is shown. :func:`safe_text` shows every
such character as a visible escape (``\\x1b``, ``\\u202e``) instead; :func:`safe_markup` also
escapes Rich markup, so ``[/]`` or ``[link=...]`` in the text is printed, never interpreted.

Example:
    >>> safe_text("hi\\x1b]52;c;ZXZpbA==\\x07 there")
    'hi\\\\x1b]52;c;ZXZpbA==\\\\x07 there'
    >>> safe_markup("[/] [bold]x")
    '\\\\[/] \\\\[bold]x'
"""

from __future__ import annotations

import re

from rich.markup import escape

__all__ = ["safe_markup", "safe_text"]

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings/overrides/isolates,
# line/paragraph separators, and the BOM / interlinear annotation controls
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb]"
)


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control, escape and bidi character shown as a visible escape.

    ``newlines=False`` also escapes ``\\n`` and ``\\t`` (for one-line fields such as names).
    """
    text = _UNSAFE.sub(_shown, text)
    if not newlines:
        text = text.replace("\n", "\\n").replace("\t", "\\t")
    return text


def safe_markup(text: str, *, newlines: bool = True) -> str:
    """:func:`safe_text`, then Rich markup escaped, for use inside a markup string."""
    return escape(safe_text(text, newlines=newlines))
