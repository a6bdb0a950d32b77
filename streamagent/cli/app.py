"""The ``streamagent`` command line: ``demo``, ``run``, ``chat`` and ``import-chat-history``.

``--json`` prints one JSON object per chunk (no colour codes). A missing API key and base URL
gives a one-line explanation and exit code 2, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from streamagent.cli.migrate import import_chat_history
from streamagent.cli.printer import ChunkPrinter
from streamagent.cli.terminal import safe_text
from streamagent.config import AgentConfig, ModelConfig
from streamagent.errors import StreamAgentError
from streamagent.streaming import StreamChunk
from streamagent.streaming.input_policy import check_thread_id

__all__ = ["app", "main"]

app = typer.Typer(
    name="streamagent",
    help="A streaming OpenAI agent on LangGraph: tools, memory, cost.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _approval_decision(chunk: StreamChunk, *, assume: bool | None) -> dict[str, str]:
    decisions: dict[str, str] = {}
    for item in chunk.interrupt or []:
        value = item.get("value") or {}
        for call in value.get("calls", []):
            if assume is None:
                name = safe_text(str(call["name"]), newlines=False)
                question = f"Allow {name}({safe_text(json.dumps(call['args']))})?"
                ok = typer.confirm(question, default=False, err=True)
            else:
                ok = assume
            decisions[call["id"]] = "approve" if ok else "reject"
    return decisions


async def _drive_turn(
    agent: Any,
    prompt: str | None,
    *,
    thread_id: str,
    printer: ChunkPrinter,
    assume: bool | None,
    multitask: str | None = None,
) -> bool:
    """Run one turn, answering approval interrupts; True when it ended without error."""
    from streamagent.streaming import astream_chunks

    resume: Any = None
    message: str | None = prompt
    while True:
        interrupted: StreamChunk | None = None
        ok = True
        stream: AsyncIterator[StreamChunk] = astream_chunks(
            agent, message, thread_id=thread_id, resume=resume, multitask=multitask
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
        from streamagent.observability.metrics import AgentMetrics, start_metrics_server

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
MultitaskOpt = Annotated[
    str | None,
    typer.Option(
        "--multitask",
        help="When the thread has a turn in flight: reject (default) or enqueue (wait).",
    ),
]


def _fail(exc: StreamAgentError) -> NoReturn:
    typer.echo(f"streamagent: {safe_text(exc.message)}", err=True)
    raise typer.Exit(code=2)


def _thread_id(thread: str | None) -> str:
    """``--thread`` checked (an empty one is refused, never a new random thread), or a new id."""
    if thread is None:
        return str(uuid.uuid4())
    try:
        return check_thread_id(thread)
    except StreamAgentError as exc:
        _fail(exc)


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
    multitask: MultitaskOpt = None,
) -> None:
    """Run one prompt and stream the answer."""
    thread_id = _thread_id(thread)
    agent = _build(model=model, base_url=base_url, workspace=workspace, metrics_port=metrics_port)
    printer = ChunkPrinter(json_lines=json_lines)
    try:
        ok = asyncio.run(
            _drive_turn(
                agent, prompt, thread_id=thread_id, printer=printer, assume=yes, multitask=multitask
            )
        )
    except KeyboardInterrupt:  # Ctrl-C: the run was cancelled (and cleaned up) by asyncio.run
        printer.cancelled()
        raise typer.Exit(code=130) from None
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
    multitask: MultitaskOpt = None,
) -> None:
    """Interactive chat (empty line or Ctrl-D to quit; Ctrl-C cancels the reply being
    streamed, or quits at the prompt); --thread continues a conversation."""
    thread_id = _thread_id(thread)
    agent = _build(model=model, base_url=base_url, workspace=workspace, metrics_port=metrics_port)
    printer = ChunkPrinter(json_lines=json_lines)
    typer.echo(f"thread: {thread_id}", err=True)
    try:
        _chat_loop(agent, thread_id=thread_id, printer=printer, multitask=multitask)
    except KeyboardInterrupt:  # Ctrl-C at the prompt: quit quietly
        typer.echo("", err=True)
        raise typer.Exit(code=130) from None


def _read_line() -> str:
    try:
        return input("you> ") if sys.stdin.isatty() else sys.stdin.readline()
    except EOFError:
        return ""


def _chat_loop(
    agent: Any, *, thread_id: str, printer: ChunkPrinter, multitask: str | None = None
) -> None:
    """Read a line, run its turn; Ctrl-C during a turn cancels only that turn.

    One event loop for the whole session (the saver's connections belong to it): an
    ``asyncio.Runner`` whose ``run`` turns Ctrl-C into a cancellation of the running turn
    (the graph stops and cleans up) and then ``KeyboardInterrupt``, caught here.
    """
    with asyncio.Runner() as runner:
        while True:
            line = _read_line()
            if not line or not line.strip():
                return
            turn = _drive_turn(
                agent,
                line.strip(),
                thread_id=thread_id,
                printer=printer,
                assume=None,
                multitask=multitask,
            )
            try:
                runner.run(turn)
            except KeyboardInterrupt:
                printer.cancelled()


@app.command()
def demo(
    json_lines: JsonOpt = False,
    token_delay_ms: Annotated[int, typer.Option(help="Delay between streamed tokens.")] = 15,
) -> None:
    """Offline demo: scripted model, real HTTP, embedded Redis memory, a real tool call."""
    from streamagent.cli.demo import run_demo

    code = run_demo(json_lines=json_lines, token_delay_seconds=token_delay_ms / 1000.0)
    raise typer.Exit(code=code)


app.command("import-chat-history")(import_chat_history)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
