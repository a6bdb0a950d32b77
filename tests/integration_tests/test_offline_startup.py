"""A fresh interpreter imports streamagent and counts tokens without any network access, and
without importing langchain (process-level checks: each runs a child Python; where the network
is the question, its sockets refuse to connect)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def test_encoding_is_built_without_network_or_tiktoken_cache(tmp_path: Path) -> None:
    cache = tmp_path / "empty-cache"
    cache.mkdir()
    script = textwrap.dedent(
        """
        import socket, sys

        def refuse(*args, **kwargs):
            raise RuntimeError("network access attempted")

        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from streamagent.accounting.tokens import count_message_tokens, count_tokens
        print(count_tokens("hello world", model="gpt-4o"), count_tokens("hello world", model="gpt-4"))
        print(count_message_tokens([{"role": "user", "content": "Hi!"}]))
        """
    )
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache)}
    env.pop("DATA_GYM_CACHE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2", "2", "9"]
    assert list(cache.iterdir()) == []


def test_importing_does_not_touch_the_network(monkeypatch):
    import socket
    import subprocess
    import sys

    code = (
        "import socket\n"
        "def refuse(*a, **k):\n    raise AssertionError('network at import')\n"
        "socket.socket.connect = refuse\n"
        "import streamagent, streamagent.graphs, streamagent.memory, streamagent.tools, streamagent.cli\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert socket.socket is not None


def test_importing_streamagent_does_not_import_langchain() -> None:
    code = (
        "import sys, streamagent, streamagent.middleware, streamagent.graphs\n"
        "assert 'langchain' not in sys.modules, 'langchain imported'\n"
        "assert 'langchain.agents' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
