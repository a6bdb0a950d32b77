"""The unit tier cannot reach the network (see tests/unit_tests/conftest.py)."""

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
