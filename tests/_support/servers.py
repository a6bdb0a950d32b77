"""The scripted OpenAI server run stand-alone, in a process of its own."""

from __future__ import annotations

import subprocess
import sys


def start_standalone(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m streamagent.testing --port 0 ARGS`` and return it with its base URL
    (read from the ``READY <url>`` line it prints once it listens)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamagent.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise AssertionError(f"no READY line: {line!r} {proc.communicate()[1]}")
    return proc, line.split(" ", 1)[1]
