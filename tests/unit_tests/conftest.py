"""The unit tier is hermetic: no network sockets, no ambient configuration.

- Sockets other than Unix ones (an event loop's self-pipe) are refused by pytest-socket: a unit
  test that tries to connect anywhere fails at once. Tests that need a real server live in
  ``tests/integration_tests``.
- Variables that would change what the package does — proxies (an ambient ``HTTPS_PROXY`` sends
  the model through the SDK path), OpenAI and LangSmith settings, ``REDIS_URL``, streamagent's
  own switches — are cleared for every test; a test that needs one sets it itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import pytest_socket

_PREFIXES = ("OPENAI_", "LANGSMITH_", "LANGCHAIN_", "STREAMAGENT_")
_NAMES = frozenset({"REDIS_URL", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"})


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper() in _NAMES or name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_network_sockets() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()
