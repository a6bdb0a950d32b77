"""The unit tier is hermetic: no network sockets, no child processes, no ambient configuration.

- Sockets other than Unix ones (an event loop's self-pipe) are refused by pytest-socket: a unit
  test that tries to connect anywhere fails at once. Tests that need a real server live in
  ``tests/integration_tests``.
- Starting a child process (``subprocess``, ``asyncio.create_subprocess_*``: both go through
  ``subprocess.Popen``) fails at once too: such a test belongs in ``tests/integration_tests``.
- Variables that would change what the package does — proxies in either case (an ambient
  ``HTTPS_PROXY`` sends the model through the SDK path), OpenAI, LangSmith and LangChain
  settings, ``REDIS_URL``, streamagent's own switches — are cleared for every test; a test that
  needs one sets it itself.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
import pytest_socket

AMBIENT_PREFIXES = ("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "STREAMAGENT_")
AMBIENT_NAMES = frozenset({"REDIS_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})


class ChildProcessBlockedError(RuntimeError):
    """A unit test tried to start a child process."""


def clear_ambient_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable of :data:`AMBIENT_NAMES` / :data:`AMBIENT_PREFIXES` (any case)."""
    for name in list(os.environ):
        upper = name.upper()
        if upper in AMBIENT_NAMES or upper.startswith(AMBIENT_PREFIXES):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_ambient_environment(monkeypatch)


@pytest.fixture(autouse=True)
def _no_network_sockets() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


@pytest.fixture(autouse=True)
def _no_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **kwargs: Any) -> NoReturn:
        raise ChildProcessBlockedError(
            f"the unit tier starts no processes ({args!r}): move the test to tests/integration_tests"
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
