"""Strict typing and lint are part of the test command (and so of CI), not a separate habit."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_package_passes_strict_mypy() -> None:
    result = _run("mypy")  # pyproject: strict = true, packages = ["streamagent"]
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_ruff_lint_and_format_are_clean() -> None:
    lint = _run("ruff", "check", "streamagent", "tests", "benchmarks")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = _run("ruff", "format", "--check", "streamagent", "tests", "benchmarks")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
