"""The savers on a real 3-node Redis Cluster (started from the embedded redis-server binary)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio.cluster as aiocluster
from redis.cluster import RedisCluster

from streamagent.memory import AsyncRedisSaver, RedisSaver
from streamagent.memory.embedded import free_port, redis_server_path
from tests.integration_tests.test_memory_compare import _run_async, _run_sync
from tests.integration_tests.test_memory_saver import _chat_graph, _turns

pytestmark = pytest.mark.cluster

SLOTS = 16384


def _cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is valid too."""
    for _ in range(1000):
        port = free_port()
        if port + 10000 <= 65535:
            return port
    raise AssertionError("no free port below 55536 for a Redis Cluster node")


def _start_node(directory: Path, port: int) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    log = (directory / "redis.log").open("wb")
    return subprocess.Popen(
        [str(redis_server_path()), "--port", str(port), "--bind", "127.0.0.1",
         "--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf"),
         "--dir", str(directory), "--save", "", "--appendonly", "no"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _wait(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except (redis.ConnectionError, redis.ResponseError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"cluster did not become ready: {what}")


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    base = tmp_path_factory.mktemp("cluster")
    ports = [_cluster_port() for _ in range(3)]
    procs = [_start_node(base / str(p), p) for p in ports]
    try:
        clients = [redis.Redis(port=p, socket_timeout=2) for p in ports]
        for client in clients:
            _wait(client.ping, "ping")
        bounds = [0, SLOTS // 3, 2 * SLOTS // 3, SLOTS]
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER ADDSLOTS", *range(bounds[i], bounds[i + 1]))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        for client in clients:
            _wait(lambda c=client: c.cluster("info")["cluster_state"] == "ok", "cluster_state ok")
            client.close()
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture
def cluster(cluster_ports: list[int]) -> Iterator[RedisCluster]:
    client = RedisCluster(host="127.0.0.1", port=cluster_ports[0], socket_timeout=5)
    yield client
    client.close()


def test_saver_suite_matches_in_memory_saver_on_a_cluster(cluster: RedisCluster) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    saver = RedisSaver(cluster, key_prefix="cl-sync", ttl_seconds=600, keep_last=None)
    saver.setup()
    assert _run_sync(saver) == _run_sync(InMemorySaver())
    keys = saver.keys_for("t2")
    assert len({cluster.keyslot(k) for k in keys}) == 1  # one slot per thread
    slots = {cluster.keyslot(saver.keys_for(f"x{i}").cp) for i in range(30)}
    assert len({cluster.get_node_from_key(saver.keys_for(f"x{i}").cp).port for i in range(30)}) > 1
    assert len(slots) > 1


def test_graph_turns_keep_last_and_delete_on_a_cluster(cluster: RedisCluster) -> None:
    saver = RedisSaver(cluster, key_prefix="cl-graph", keep_last=2, ttl_seconds=600)
    saver.setup()
    graph = _chat_graph(saver)
    for i in range(6):
        _turns(graph, f"thread-{i}", 2)
    for i in range(6):
        config = {"configurable": {"thread_id": f"thread-{i}"}}
        assert len(graph.get_state(config).values["messages"]) == 4
        assert len(list(saver.list(config))) == 2
        saver.delete_thread(f"thread-{i}")
        assert not any(cluster.exists(k) for k in saver.data_keys(f"thread-{i}"))


async def test_async_saver_matches_in_memory_saver_on_a_cluster(cluster_ports: list[int]) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    client = aiocluster.RedisCluster(host="127.0.0.1", port=cluster_ports[1], socket_timeout=5)
    try:
        saver = AsyncRedisSaver(client, key_prefix="cl-async")
        await saver.asetup()
        assert await _run_async(saver) == await _run_async(InMemorySaver())
    finally:
        await client.aclose()
