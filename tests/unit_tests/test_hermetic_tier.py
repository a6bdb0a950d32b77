"""The unit tier cannot reach the network, start a process or read ambient settings (see
tests/unit_tests/conftest.py)."""

from __future__ import annotations

import asyncio
import socket

import pytest
import pytest_socket


@pytest.mark.filterwarnings("ignore:A test tried to use socket")  # else the warning is the error
def test_a_network_socket_is_refused():
    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.socket(socket.AF_INET, socket.SOCK_STREAM)


def test_an_event_loop_still_works():
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncio.run(answer()) == 42


def test_a_child_process_is_refused():
    import subprocess
    import sys

    from tests.unit_tests.conftest import ChildProcessBlockedError

    with pytest.raises(ChildProcessBlockedError, match="integration_tests"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


async def test_an_asyncio_child_process_is_refused():
    import sys

    from tests.unit_tests.conftest import ChildProcessBlockedError

    with pytest.raises(ChildProcessBlockedError):
        await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")


@pytest.mark.parametrize(
    "name",
    [
        "HTTP_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "no_proxy",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "LANGSMITH_TRACING",
        "LANGCHAIN_API_KEY",
        "REDIS_URL",
        "STREAMAGENT_FAST_PATH",
    ],
)
def test_ambient_configuration_is_cleared(monkeypatch, name):
    import os

    from tests.unit_tests.conftest import clear_ambient_environment

    monkeypatch.setenv(name, "from the developer's shell")
    monkeypatch.setenv("HOME_OF_AN_UNRELATED_SETTING", "kept")
    clear_ambient_environment(monkeypatch)
    assert name not in os.environ
    assert os.environ["HOME_OF_AN_UNRELATED_SETTING"] == "kept"
