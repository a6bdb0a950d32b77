"""The offline demo behind ``streamagent demo``.

A scripted OpenAI-compatible server (real HTTP, real SSE) plays the model; memory is Redis
(``REDIS_URL`` or the embedded server); the tools are the real, confined file tools working in
a temporary workspace. Two turns: the agent writes a file with a tool, then, in the second
turn, remembers the first turn (the request the server receives carries the thread's history
from Redis) and reads the file back.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

from streamagent.config import AgentConfig, ModelConfig
from streamagent.streaming import StreamChunk, astream_chunks
from streamagent.testing import Reply, ScriptedOpenAIServer, ToolCall

__all__ = ["DEMO_TURNS", "demo_script", "run_demo"]

NOTE = "# Streaming notes\n\nLangGraph streams tokens from inside nodes, even in subgraphs.\n"

DEMO_TURNS = (
    "Please save a short note about LangGraph streaming to notes.md.",
    "What did I ask you to do a moment ago? Read the file back to me.",
)


def demo_script() -> list[Reply]:
    """The model's side of the demo conversation."""
    return [
        Reply(
            "I'll write that note for you.",
            tool_calls=[ToolCall("write_file", {"path": "notes.md", "content": NOTE})],
        ),
        Reply("Done: I saved your note to notes.md."),
        Reply(tool_calls=[ToolCall("read_file", {"path": "notes.md"})]),
        Reply(
            "You asked me to save a note about LangGraph streaming to notes.md. "
            "Here it is: LangGraph streams tokens from inside nodes, even in subgraphs."
        ),
    ]


async def _turn(
    agent: Any, text: str, thread_id: str, printer: Any, console: Console | None
) -> tuple[bool, StreamChunk | None]:
    if console is not None:
        console.print(f"\n[bold green]you>[/] {text}")
    done: StreamChunk | None = None
    ok = True
    async for chunk in astream_chunks(agent, text, thread_id=thread_id):
        printer(chunk)
        if chunk.type == "done":
            done = chunk
        if chunk.type == "error":
            ok = False
    return ok, done


async def _run(*, json_lines: bool, token_delay_seconds: float) -> int:
    from streamagent.cli.printer import ChunkPrinter
    from streamagent.graphs.agent import build_agent
    from streamagent.tools._workspace import Workspace
    from streamagent.tools.files import ReadFileTool, WriteFileTool

    console = None if json_lines else Console(highlight=False)
    printer = ChunkPrinter(json_lines=json_lines, console=console)
    thread_id = f"demo-{uuid.uuid4().hex[:8]}"
    with (
        tempfile.TemporaryDirectory(prefix="streamagent-demo-") as tmp,
        ScriptedOpenAIServer(demo_script(), token_delay_seconds=token_delay_seconds) as server,
    ):
        workspace = Path(tmp)
        config = AgentConfig(
            model=ModelConfig(model="gpt-4o", base_url=server.base_url, api_key="demo"),
            system_prompt="You are a helpful assistant with file tools.",
        )
        ws = Workspace.from_path(workspace)  # the file tools only: no shell, no sandbox choice
        agent = build_agent(
            tools=[ReadFileTool(workspace=ws), WriteFileTool(workspace=ws)], config=config
        )
        if console is not None:
            console.rule("[bold]streamagent demo[/] (scripted model over real HTTP, Redis memory)")
            console.print(f"thread {thread_id}, workspace {workspace}")
        total_cost = Decimal(0)
        cost_known = True
        for text in DEMO_TURNS:
            ok, done = await _turn(agent, text, thread_id, printer, console)
            if not ok or done is None:
                return 1
            if done.cost_usd is None:
                cost_known = False
            else:
                total_cost += done.cost_usd
        requests = server.requests
        third = requests[2].messages if len(requests) > 2 else []
        remembered = any(DEMO_TURNS[0] in json.dumps(m) for m in third)
        written = (workspace / "notes.md").read_text(encoding="utf-8") == NOTE
        summary = {
            "type": "summary",
            "thread_id": thread_id,
            "model_requests": len(requests),
            "turn2_messages_sent": len(third),
            "remembered_turn1": remembered,
            "file_written": written,
            "total_cost_usd": str(total_cost) if cost_known else None,
        }
        if console is None:
            print(json.dumps(summary))
        else:
            console.rule("summary")
            console.print(
                f"memory: turn 2 sent {len(third)} messages from the Redis thread "
                f"(turn 1 remembered: {remembered}); notes.md written: {written}; "
                f"total cost: {'unknown' if not cost_known else f'${total_cost:.6f}'}"
            )
        return 0 if (remembered and written) else 1


def run_demo(*, json_lines: bool = False, token_delay_seconds: float = 0.015) -> int:
    """Run the demo; returns the process exit code."""
    return asyncio.run(_run(json_lines=json_lines, token_delay_seconds=token_delay_seconds))
