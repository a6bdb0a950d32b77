"""Stand-alone scripted OpenAI server: ``python -m streamagent.testing [options]``.

Prints one line ``READY <base_url>`` on stdout once it accepts connections, then serves until
SIGTERM or SIGINT. Options:

* ``--script FILE.json`` — script items served first (format: :mod:`streamagent.testing.script`);
* ``--reply-tokens N`` — then every request gets a text reply of exactly N content chunks;
* ``--tool-then-text`` — with ``--reply-tokens``: when the last request message is not a tool
  result, reply with one call to ``--tool-name`` (default ``echo``) with ``{"text": "hi"}``;
* ``--token-delay-ms MS`` — pause before each content / tool-call chunk;
* ``--pace-on-schedule`` — send those chunks MS apart on a fixed schedule: a late chunk is
  followed by the next ones as soon as they are due (the reply keeps its rate);
* ``--host`` / ``--port`` (0 picks a free port) / ``--model``.

Without ``--reply-tokens``, requests after the script get HTTP 400 ("script exhausted").

Example::

    python -m streamagent.testing --port 0 --reply-tokens 2000 --token-delay-ms 0
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import orjson

from streamagent.errors import InvalidInputError
from streamagent.testing.script import RecordedRequest, Reply, ToolCall, parse_script
from streamagent.testing.server import Responder, ScriptedOpenAIServer
from streamagent.testing.wire import filler_text

__all__ = ["FillerResponder", "main", "parse_args"]


@dataclass(frozen=True, slots=True)
class FillerResponder:
    """Answers every request with ``reply_tokens`` pieces of text (or first a tool call)."""

    reply_tokens: int
    tool_then_text: bool = False
    tool_name: str = "echo"

    def __call__(self, request: RecordedRequest) -> Reply:
        """The reply to ``request``."""
        messages = request.messages
        last_role = messages[-1].get("role") if messages else None
        if self.tool_then_text and last_role != "tool":
            return Reply(tool_calls=[ToolCall(self.tool_name, {"text": "hi"})])
        return Reply(filler_text(self.reply_tokens))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m streamagent.testing",
        description="Serve a scripted OpenAI-compatible Chat Completions endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--model", default="gpt-4o")
    parser.add_argument("--script", type=Path, help="JSON list of script items")
    parser.add_argument("--reply-tokens", type=int, help="content chunks of each fallback reply")
    parser.add_argument("--token-delay-ms", type=float, default=0.0)
    parser.add_argument(
        "--pace-on-schedule",
        action="store_true",
        help="paced chunks due on a fixed schedule (a late one is followed at once)",
    )
    parser.add_argument("--tool-then-text", action="store_true")
    parser.add_argument("--tool-name", default="echo")
    args = parser.parse_args(argv)
    if args.reply_tokens is not None and args.reply_tokens < 0:
        parser.error("--reply-tokens must be >= 0")
    if args.token_delay_ms < 0:
        parser.error("--token-delay-ms must be >= 0")
    if args.tool_then_text and args.reply_tokens is None:
        parser.error("--tool-then-text needs --reply-tokens")
    return args


def build_server(args: argparse.Namespace) -> ScriptedOpenAIServer:
    """The server the command line describes (not started)."""
    script = parse_script(orjson.loads(args.script.read_bytes())) if args.script else []
    responder: Responder | None = None
    if args.reply_tokens is not None:
        responder = FillerResponder(args.reply_tokens, args.tool_then_text, args.tool_name)
    return ScriptedOpenAIServer(
        script,
        responder=responder,
        token_delay_seconds=args.token_delay_ms / 1000.0,
        pace_on_schedule=args.pace_on_schedule,
        model=args.model,
        host=args.host,
        port=args.port,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGTERM/SIGINT; returns the exit status."""
    args = parse_args(argv)
    try:
        server = build_server(args)
    except (OSError, orjson.JSONDecodeError, InvalidInputError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    server.start()
    try:
        sys.stdout.write(f"READY {server.base_url}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
