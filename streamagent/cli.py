"""The ``streamagent`` command line: ``demo``, ``run``, ``chat`` and ``import-chat-history``.

``--json`` prints one JSON object per chunk (no colour codes). A missing API key and base URL
gives a one-line explanation and exit code 2, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from streamagent.cli_migrate import import_chat_history
from streamagent.config import AgentConfig, ModelConfig
from streamagent.errors import StreamAgentError
from streamagent.streaming import StreamChunk

__all__ = ["ChunkPrinter", "app", "main"]

app = typer.Typer(
    name="streamagent",
    help="A streaming OpenAI agent on LangGraph: tools, memory, cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class ChunkPrinter:
    """Renders chunks for a person (Rich) or as JSON lines."""

    def __init__(self, *, json_lines: bool, console: Console | None = None) -> None:
        self.json_lines = json_lines
        self.console = console or Console(highlight=False, soft_wrap=True)
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

    def _on_content(self, chunk: StreamChunk) -> None:
        if not self._in_text:
            self.console.print("[bold cyan]assistant>[/] ", end="")
            self._in_text = True
        self.console.print(chunk.content or "", end="", markup=False)

    def _on_tool_call(self, chunk: StreamChunk) -> None:
        self._end_text()
        call = chunk.tool_call or {}
        args = json.dumps(call.get("args"), ensure_ascii=False)
        self.console.print(f"[yellow]tool call[/] {call.get('name')}({args})", markup=True)

    def _on_tool_result(self, chunk: StreamChunk) -> None:
        result = chunk.tool_result or {}
        style = "green" if result.get("status") != "error" else "red"
        text = str(result.get("content", ""))
        if len(text) > 400:
            text = text[:400] + " …"
        self.console.print(f"[{style}]tool result[/] {result.get('name')}: ", end="")
        self.console.print(text, markup=False)

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
        self.console.print(
            f"[bold red]error[/] {err.get('type')}: {err.get('message')}", markup=True
        )

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


def _approval_decision(chunk: StreamChunk, *, assume: bool | None) -> dict[str, str]:
    decisions: dict[str, str] = {}
    for item in chunk.interrupt or []:
        value = item.get("value") or {}
        for call in value.get("calls", []):
            if assume is None:
                question = f"Allow {call['name']}({json.dumps(call['args'])})?"
                ok = typer.confirm(question, default=False, err=True)
            else:
                ok = assume
            decisions[call["id"]] = "approve" if ok else "reject"
    return decisions


async def _drive_turn(
    agent: Any, prompt: str | None, *, thread_id: str, printer: ChunkPrinter, assume: bool | None
) -> bool:
    """Run one turn, answering approval interrupts; True when it ended without error."""
    from streamagent.streaming import astream_chunks

    resume: Any = None
    message: str | None = prompt
    while True:
        interrupted: StreamChunk | None = None
        ok = True
        stream: AsyncIterator[StreamChunk] = astream_chunks(
            agent, message, thread_id=thread_id, resume=resume
        )
        async for chunk in stream:
            printer(chunk)
            if chunk.type == "interrupt":
                interrupted = chunk
            if chunk.type == "error":
                ok = False
        if interrupted is None:
            return ok
        resume = _approval_decision(interrupted, assume=assume)
        message = None


def _build(
    *, model: str | None, base_url: str | None, workspace: Path | None, metrics_port: int | None
) -> Any:
    """The agent for ``run`` / ``chat``; a configuration problem ends the program in one line."""
    try:
        return _build_agent(
            model=model, base_url=base_url, workspace=workspace, metrics_port=metrics_port
        )
    except StreamAgentError as exc:
        _fail(exc)


def _build_agent(
    *, model: str | None, base_url: str | None, workspace: Path | None, metrics_port: int | None
) -> Any:
    from streamagent.graphs.agent import build_agent
    from streamagent.tools import default_tools

    overrides: dict[str, Any] = {}
    if model:
        overrides["model"] = model
    if base_url:
        overrides["base_url"] = base_url
    model_cfg = ModelConfig(**overrides)
    model_cfg.require_endpoint()
    observer = None
    if metrics_port is not None:
        from streamagent.metrics import AgentMetrics, start_metrics_server

        observer = AgentMetrics()
        start_metrics_server(metrics_port, metrics=observer)
    ws = (workspace or Path.cwd()).resolve()
    return build_agent(
        tools=default_tools(ws), config=AgentConfig(model=model_cfg), observer=observer
    )


ModelOpt = Annotated[str | None, typer.Option("--model", help="Model name (default gpt-4o).")]
BaseUrlOpt = Annotated[
    str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (OPENAI_BASE_URL).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per chunk, no colour.")]
ThreadOpt = Annotated[str | None, typer.Option("--thread", help="Thread id to continue.")]
WorkspaceOpt = Annotated[
    Path | None, typer.Option("--workspace", help="Directory the tools may touch (default: cwd).")
]
MetricsOpt = Annotated[
    int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port.")
]
YesOpt = Annotated[bool | None, typer.Option("--yes/--no", help="Answer approval prompts.")]


def _fail(exc: StreamAgentError) -> NoReturn:
    typer.echo(f"streamagent: {exc.message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def run(
    prompt: Annotated[str, typer.Argument(help="What to ask the agent.")],
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    thread: ThreadOpt = None,
    json_lines: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    metrics_port: MetricsOpt = None,
    yes: YesOpt = None,
) -> None:
    """Run one prompt and stream the answer."""
    agent = _build(model=model, base_url=base_url, workspace=workspace, metrics_port=metrics_port)
    thread_id = thread or str(uuid.uuid4())
    printer = ChunkPrinter(json_lines=json_lines)
    ok = asyncio.run(_drive_turn(agent, prompt, thread_id=thread_id, printer=printer, assume=yes))
    if not json_lines:
        typer.echo(f"thread: {thread_id}", err=True)
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def chat(
    model: ModelOpt = None,
    base_url: BaseUrlOpt = None,
    thread: ThreadOpt = None,
    json_lines: JsonOpt = False,
    workspace: WorkspaceOpt = None,
    metrics_port: MetricsOpt = None,
) -> None:
    """Interactive chat (empty line or Ctrl-D to quit); --thread continues a conversation."""
    agent = _build(model=model, base_url=base_url, workspace=workspace, metrics_port=metrics_port)
    thread_id = thread or str(uuid.uuid4())
    printer = ChunkPrinter(json_lines=json_lines)
    typer.echo(f"thread: {thread_id}", err=True)
    # One event loop for the whole session: the saver's connections belong to it.
    asyncio.run(_chat_loop(agent, thread_id=thread_id, printer=printer))


def _read_line() -> str:
    try:
        return input("you> ") if sys.stdin.isatty() else sys.stdin.readline()
    except EOFError:
        return ""


async def _chat_loop(agent: Any, *, thread_id: str, printer: ChunkPrinter) -> None:
    while True:
        line = await asyncio.to_thread(_read_line)
        if not line or not line.strip():
            return
        await _drive_turn(agent, line.strip(), thread_id=thread_id, printer=printer, assume=None)


@app.command()
def demo(
    json_lines: JsonOpt = False,
    token_delay_ms: Annotated[int, typer.Option(help="Delay between streamed tokens.")] = 15,
) -> None:
    """Offline demo: scripted model, real HTTP, embedded Redis memory, a real tool call."""
    from streamagent.demo import run_demo

    code = run_demo(json_lines=json_lines, token_delay_seconds=token_delay_ms / 1000.0)
    raise typer.Exit(code=code)


app.command("import-chat-history")(import_chat_history)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
