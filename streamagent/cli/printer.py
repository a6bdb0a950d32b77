"""Printing a run's chunks in a terminal, safely (model and tool text is escaped).

Example:
    >>> from io import StringIO
    >>> from rich.console import Console
    >>> out = StringIO()
    >>> printer = ChunkPrinter(json_lines=False, console=Console(file=out, highlight=False))
    >>> printer(StreamChunk(type="content", content="Hi"))
    >>> "Hi" in out.getvalue()
    True
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from streamagent.cli.terminal import safe_markup, safe_text
from streamagent.streaming.chunk import StreamChunk

__all__ = ["ChunkPrinter"]


class ChunkPrinter:
    """Renders chunks for a person (Rich) or as JSON lines."""

    def __init__(self, *, json_lines: bool, console: Console | None = None) -> None:
        self.json_lines = json_lines
        # no highlighting and no ``:emoji:`` codes: text from a model is shown as it came
        self.console = console or Console(highlight=False, soft_wrap=True, emoji=False)
        self._in_text = False

    def __call__(self, chunk: StreamChunk) -> None:
        if self.json_lines:
            sys.stdout.write(json.dumps(chunk.to_dict(), default=str) + "\n")
            sys.stdout.flush()
            return
        handler: Callable[[StreamChunk], None] | None = getattr(self, f"_on_{chunk.type}", None)
        if handler is not None:
            handler(chunk)

    def _end_text(self) -> None:
        if self._in_text:
            self.console.print()
            self._in_text = False

    # Everything shown below that came from the model, a tool or the server goes through
    # safe_text / safe_markup (streamagent.cli.terminal): escape sequences are shown, not obeyed.
    def _on_content(self, chunk: StreamChunk) -> None:
        if not self._in_text:
            self.console.print("[bold cyan]assistant>[/] ", end="")
            self._in_text = True
        self.console.print(safe_text(chunk.content or ""), end="", markup=False)

    def _on_reasoning(self, chunk: StreamChunk) -> None:
        """A reasoning summary (Responses API models), dimmed, before the answer."""
        self.console.print(safe_text(chunk.content or ""), end="", style="dim", markup=False)

    def _on_tool_call(self, chunk: StreamChunk) -> None:
        self._end_text()
        call = chunk.tool_call or {}
        args = json.dumps(call.get("args"), ensure_ascii=False)
        name = safe_markup(str(call.get("name")), newlines=False)
        self.console.print(f"[yellow]tool call[/] {name}({safe_markup(args)})", markup=True)

    def _on_tool_result(self, chunk: StreamChunk) -> None:
        result = chunk.tool_result or {}
        style = "green" if result.get("status") != "error" else "red"
        text = str(result.get("content", ""))
        if len(text) > 400:
            text = text[:400] + " …"
        name = safe_markup(str(result.get("name")), newlines=False)
        self.console.print(f"[{style}]tool result[/] {name}: ", end="")
        self.console.print(safe_text(text), markup=False)

    def _on_retry(self, chunk: StreamChunk) -> None:
        self._end_text()
        info = chunk.retry or {}
        self.console.print(
            f"[magenta]retrying[/] (attempt {info.get('attempt')}): discarding partial output"
        )

    def _on_interrupt(self, chunk: StreamChunk) -> None:
        self._end_text()

    def _on_error(self, chunk: StreamChunk) -> None:
        self._end_text()
        err = chunk.error or {}
        kind = safe_markup(str(err.get("type")), newlines=False)
        self.console.print(
            f"[bold red]error[/] {kind}: {safe_markup(str(err.get('message')))}", markup=True
        )

    def cancelled(self) -> None:
        """Note a turn the user cancelled (Ctrl-C) before the next prompt."""
        if self.json_lines:
            return
        self._end_text()
        self.console.print("[magenta]cancelled[/] (Ctrl-C): the turn stopped")

    def _on_done(self, chunk: StreamChunk) -> None:
        self._end_text()
        usage = chunk.usage or {}
        table = Table(show_header=True, header_style="bold", box=None)
        for col in ("input", "cached", "output", "cost (USD)", "latency", "first token"):
            table.add_column(col, justify="right")
        cost = "unknown" if chunk.cost_usd is None else f"${chunk.cost_usd:.6f}"
        ttft = chunk.time_to_first_token_seconds
        table.add_row(
            str(usage.get("input_tokens", 0)),
            str(usage.get("cached_input_tokens", 0)),
            str(usage.get("output_tokens", 0)),
            cost,
            f"{(chunk.latency_seconds or 0) * 1000:.0f} ms",
            "-" if ttft is None else f"{ttft * 1000:.0f} ms",
        )
        self.console.print(table)
