"""A loopback stand-in for LangSmith: assert your agent's trace in your own tests, offline.

:class:`LangSmithCapture` is a small HTTP server on loopback that answers what the real
``langsmith`` client asks (``GET /info``) and records every run it posts — multipart
(zstd-compressed, the client's default), batch, or single ``POST``/``PATCH`` — merged per run
id. :meth:`LangSmithCapture.tree` gives the runs back as a tree of :class:`TracedRun`, so a
test can check graph → nodes → model (model name, usage, cost, attempts) → tools without a
LangSmith account or network.

In-process, trace a block with :meth:`LangSmithCapture.tracing` (LangSmith's own
``tracing_context`` with a client that posts here; flushed on exit). For a child process, pass
:meth:`LangSmithCapture.env` — the standard ``LANGSMITH_*`` variables.

Example:
    >>> from langchain_core.runnables import RunnableLambda
    >>> from streamagent.testing.langsmith import LangSmithCapture
    >>> with LangSmithCapture() as capture:
    ...     with capture.tracing(project_name="docs"):
    ...         result = RunnableLambda(lambda x: x + 1, name="add_one").invoke(1)
    ...     (root,) = capture.tree()
    >>> root.name, root.run_type, root.outputs
    ('add_one', 'chain', {'output': 2})
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from streamagent.testing._lifecycle import StartStop

__all__ = ["LangSmithCapture", "TracedRun"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_INFO = {
    "version": "0.10.0",
    "batch_ingest_config": {
        "use_multipart_endpoint": True,
        "size_limit_bytes": 20_000_000,
        "size_limit": 100,
        "scale_up_nthreads_limit": 16,
        "scale_up_qsize_trigger": 1000,
        "scale_down_nempty_trigger": 4,
    },
    "instance_flags": {"zstd_compression_enabled": True},
}
_START_TIMEOUT_SECONDS = 10.0
#: The API key the capture hands to clients (it checks none; LangSmith's client wants one).
FAKE_API_KEY = "lsv2_pt_streamagent_capture"


@dataclass
class TracedRun:
    """One recorded run and its children (in the order LangSmith shows them)."""

    id: str
    name: str
    run_type: str
    tags: list[str]
    metadata: dict[str, Any]
    inputs: Any
    outputs: Any
    error: str | None
    children: list[TracedRun] = field(default_factory=list)

    def find(self, name: str) -> list[TracedRun]:
        """Every run named ``name`` in this subtree (this run included), depth first."""
        found = [self] if self.name == name else []
        for child in self.children:
            found.extend(child.find(name))
        return found

    def outline(self) -> tuple[str, list[Any]]:
        """``(name, [children's outlines])``: the tree's shape, for one-line assertions."""
        return (self.name, [child.outline() for child in self.children])


def _decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding != "zstd" or not body.startswith(_ZSTD_MAGIC):
        return body
    import zstandard  # a dependency of langsmith's client

    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(body))


class _Recorder:
    """The received bodies and the runs merged per id (pure; no I/O)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.paths: list[str] = []
        self.bodies: list[bytes] = []
        self.runs: dict[str, dict[str, Any]] = {}

    def merge(self, run_id: str, data: Mapping[str, Any]) -> None:
        with self.lock:
            self.runs.setdefault(run_id, {}).update(data)

    def multipart(self, content_type: str, body: bytes) -> None:
        head = f"Content-Type: {content_type}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        for part in message.iter_parts():  # type: ignore[attr-defined]
            name = str(part.get_param("name", header="content-disposition"))
            raw = part.get_payload(decode=True)
            payload = json.loads(raw if isinstance(raw, bytes | str) else str(raw))
            _operation, run_id, *rest = name.split(".")
            self.merge(run_id, {rest[0]: payload} if rest else payload)

    def record(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> None:
        with self.lock:
            self.paths.append(f"{method} {path}")
            self.bodies.append(body)
        if path.endswith("/runs/multipart"):
            self.multipart(headers["Content-Type"], body)
        elif path.endswith("/runs/batch"):
            batch = json.loads(body)
            for op in ("post", "patch"):
                for run in batch.get(op) or []:
                    self.merge(str(run["id"]), run)
        elif method == "POST" and path.endswith("/runs"):
            run = json.loads(body)
            self.merge(str(run["id"]), run)
        elif method == "PATCH" and "/runs/" in path:
            self.merge(path.rsplit("/", 1)[-1], json.loads(body))


def _traced(run: Mapping[str, Any]) -> TracedRun:
    extra = run.get("extra") or {}
    return TracedRun(
        id=str(run.get("id")),
        name=str(run.get("name")),
        run_type=str(run.get("run_type")),
        tags=list(run.get("tags") or []),
        metadata=dict(extra.get("metadata") or {}),
        inputs=run.get("inputs"),
        outputs=run.get("outputs"),
        error=run.get("error"),
    )


class LangSmithCapture(StartStop):
    """A loopback LangSmith endpoint that records posted runs (see the module docstring).

    Nothing happens until :meth:`start` (or ``with``); :meth:`stop` ends the server.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._recorder = _Recorder()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._clients: list[Any] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Serve on a free loopback port, in a thread of its own."""
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="langsmith-capture")
        self._thread.daemon = True
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), loop).result(_START_TIMEOUT_SECONDS)
        return self

    def stop(self) -> None:
        """Flush the clients made here, then stop the server."""
        self.flush()
        loop, runner = self._loop, self._runner
        if loop is None or runner is None:
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(_START_TIMEOUT_SECONDS)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT_SECONDS)
        loop.close()
        self._loop = self._runner = None

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # the client compresses with zstd: decoded here, not by aiohttp's parser
        self._runner = web.AppRunner(app, auto_decompress=False, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = int(self._runner.addresses[0][1])

    async def _handle(self, request: web.Request) -> web.Response:
        body = _decompress(await request.read(), request.headers.get("Content-Encoding"))
        self._recorder.record(request.method, request.path, request.headers, body)
        if request.path.endswith("/info"):
            return web.json_response(_INFO)
        return web.json_response({}, status=202)

    # ------------------------------------------------------------------ pointing clients here
    @property
    def endpoint(self) -> str:
        """``http://HOST:PORT`` — LangSmith's ``api_url`` / ``LANGSMITH_ENDPOINT``."""
        return f"http://{self.host}:{self.port}"

    def client(self) -> Any:
        """A ``langsmith.Client`` that posts here (flushed by :meth:`flush` and :meth:`stop`)."""
        from langsmith import Client

        client = Client(api_url=self.endpoint, api_key=FAKE_API_KEY)
        self._clients.append(client)
        return client

    @contextmanager
    def tracing(self, *, project_name: str = "streamagent-tests") -> Iterator[Any]:
        """Trace the block to this capture (LangSmith's ``tracing_context``); flushed on exit."""
        from langsmith import tracing_context

        client = self.client()
        with tracing_context(enabled=True, client=client, project_name=project_name):
            yield client
        client.flush()

    def env(self, *, project_name: str = "streamagent-tests") -> dict[str, str]:
        """The standard ``LANGSMITH_*`` variables that send a child process's traces here."""
        return {
            "LANGSMITH_TRACING": "true",
            "LANGSMITH_ENDPOINT": self.endpoint,
            "LANGSMITH_API_KEY": FAKE_API_KEY,
            "LANGSMITH_PROJECT": project_name,
        }

    def flush(self) -> None:
        """Wait until every client made by :meth:`client` has posted what it holds."""
        for client in self._clients:
            client.flush()

    # ------------------------------------------------------------------ reading back
    @property
    def runs(self) -> dict[str, dict[str, Any]]:
        """Every run received, as LangSmith's JSON merged per run id (a snapshot)."""
        with self._recorder.lock:
            return {k: dict(v) for k, v in self._recorder.runs.items()}

    @property
    def paths(self) -> list[str]:
        """``METHOD /path`` of each request, in arrival order."""
        with self._recorder.lock:
            return list(self._recorder.paths)

    @property
    def bodies(self) -> list[bytes]:
        """Each request's (decompressed) body — e.g. to check that no secret was sent."""
        with self._recorder.lock:
            return list(self._recorder.bodies)

    def tree(self) -> list[TracedRun]:
        """The root runs, each with its children (sorted by LangSmith's ``dotted_order``)."""
        runs = self.runs
        nodes = {run_id: _traced(run) for run_id, run in runs.items()}

        def order(run_id: str) -> str:
            return str(runs[run_id].get("dotted_order") or "")

        roots: list[TracedRun] = []
        for run_id in sorted(runs, key=order):
            parent = runs[run_id].get("parent_run_id")
            if parent is not None and str(parent) in nodes:
                nodes[str(parent)].children.append(nodes[run_id])
            else:
                roots.append(nodes[run_id])
        return roots
