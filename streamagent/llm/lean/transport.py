"""The lean transport's async HTTP: one pooled ``aiohttp`` session per event loop.

``httpx2`` (the openai SDK's HTTP library) spends ~100 µs of CPU per socket read of a streamed
body in its layered async stack (client → transport → pool → h11 → anyio); ``aiohttp``'s
C-accelerated reader spends ~35 (``benchmarks/profile_streaming.py``). Under paced load every
streamed chunk is one socket read, so this is most of a session's client cost. The openai SDK offers
aiohttp as an alternative async transport for the same reason.

What this module owns:

- :class:`AioSessions` / :data:`SHARED_SESSIONS` — the ``aiohttp.ClientSession`` of each
  running event loop (sessions belong to one loop), shared by all models, made on first use
  with a 4,096-connection pool and certifi's CA bundle like the SDK (no ``trust_env``: it
  re-reads the proxy environment and ``.netrc`` on every request, 0.4 ms of CPU each;
  :func:`env_proxy_for` lets a proxied URL take the SDK's path instead); closed at the loop's
  shutdown (``asyncio.run`` / ``Runner`` close async generators first, and the session's
  closer is one), so no "Unclosed client session" noise and no leaked loop;
- :func:`client_timeout` — the SDK's timeout (``httpx``-style connect/read/write/pool) as
  ``aiohttp``'s;
- :func:`as_openai_error` — transport failures as the exceptions the SDK raises
  (``APITimeoutError``, ``APIConnectionError`` with the aiohttp error as its cause);
- :class:`BodyReader` — a streamed body's bytes as they arrive, *including* those that arrived
  before the connection broke (aiohttp's reader drops its buffer when it records the error;
  httpx2 hands them out first, and so do we, so a broken stream shows the same partial reply);
- :func:`status_response` — an error response as the ``httpx2.Response`` the SDK builds its
  ``APIStatusError`` subclasses from (status, headers such as ``Retry-After``, body).
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
import urllib.request
import weakref
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import httpx2
import openai

from streamagent._upstream import aiohttp_private

__all__ = [
    "SHARED_SESSIONS",
    "AioSessions",
    "BodyReader",
    "env_proxy_for",
    "TRANSPORT_ERRORS",
    "as_openai_error",
    "client_timeout",
    "status_response",
]

#: Keep-alive of idle pooled connections (httpx's default; servers drop idle ones).
KEEPALIVE_SECONDS = 5.0
#: Concurrent streams per event loop, all models together (the openai SDK allows 1,000 per
#: client; the shared pool leaves room for several agents at that scale).
MAX_CONNECTIONS = 4096
#: Bytes a connection buffers before it stops reading from its socket (aiohttp pauses at twice
#: this, resumes below it; its default is 64 KiB). A streamed chunk is ~200 bytes, so a stream
#: that is read on time never comes near it; one that falls behind (a loop overloaded by
#: thousands of streams) leaves the rest in the kernel and the server, under TCP's flow control,
#: instead of up to 128 KiB per stream in this process (1,000 sessions at the edge of what one
#: loop sustains: peak RSS 559 MB with 16 KiB, 467 MB with 4 KiB, at the same throughput).
READ_BUFFER_BYTES = 4 * 1024
#: What a request or a body read raises when the transport fails.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientError,
    TimeoutError,
    ssl.SSLError,
    OSError,
)

_ssl_context: ssl.SSLContext | None = None


def _default_ssl() -> ssl.SSLContext:
    """certifi's CA bundle, as the SDK's HTTP client uses (built once, it is not cheap)."""
    global _ssl_context  # noqa: PLW0603 - one immutable context per process
    if _ssl_context is None:
        try:
            import certifi

            _ssl_context = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # pragma: no cover - certifi comes with httpx
            _ssl_context = ssl.create_default_context()
    return _ssl_context


def env_proxy_for(url: str) -> str | None:
    """The proxy the environment (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``…) sets for ``url``,
    as the SDK's HTTP client would use it; ``None`` when the URL is reached directly."""
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or not parts.hostname:
        return None
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    return None if urllib.request.proxy_bypass(host) else proxy  # NO_PROXY


def client_timeout(timeout: httpx2.Timeout) -> aiohttp.ClientTimeout:
    """``connect``/``read``/``pool`` of an httpx-style timeout as aiohttp's (no total limit).

    aiohttp's ``connect`` covers waiting for a pooled connection *and* connecting, so it is
    pool + connect; ``sock_read`` is the longest wait for body bytes, like httpx's ``read``.
    (aiohttp has no write timeout: a request body is small and sent at once.)
    """
    connect = timeout.connect
    pool = timeout.pool
    acquire = None if connect is None or pool is None else connect + pool
    return aiohttp.ClientTimeout(
        total=None, connect=acquire, sock_connect=connect, sock_read=timeout.read
    )


def as_openai_error(exc: BaseException, url: str) -> openai.APIConnectionError:
    """The SDK's exception for a transport failure (raise it ``from exc``)."""
    request = httpx2.Request("POST", url)
    if isinstance(exc, TimeoutError):
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)


def status_response(status: int, headers: Any, body: bytes, url: str) -> httpx2.Response:
    """An error response as ``httpx2.Response`` (aiohttp already decoded the body)."""
    kept = [
        (k, v)
        for k, v in headers.items()
        if k.lower() not in ("content-encoding", "content-length")
    ]
    return httpx2.Response(status, headers=kept, content=body, request=httpx2.Request("POST", url))


class BodyReader:
    """``read()`` returns the next bytes of a streamed body (``b""`` at its end).

    With ``read_timeout_seconds`` it takes over the connection's ``sock_read`` timeout for the
    body: aiohttp re-arms a timer on every received packet (a ``TimerHandle`` cancelled and a
    new one pushed on the loop's heap per streamed token, where each cancelled one stays until
    its deadline). Here one timer per stream checks lazily — only when it fires — whether a read
    has been waiting for longer than the timeout, and then fails it with aiohttp's own
    ``ServerTimeoutError`` (the same error ``sock_read`` gives). Time the reader spends away
    from ``read()`` (the consumer's) does not count. Call :meth:`close` when done.
    """

    __slots__ = ("_content", "_failure", "_handle", "_loop", "_timeout", "_waiting_since")

    def __init__(
        self,
        content: aiohttp.StreamReader,
        *,
        read_timeout_seconds: float | None = None,
        connection: Any = None,
    ) -> None:
        self._content = content
        self._failure: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._timeout = read_timeout_seconds or 0.0
        self._waiting_since: float | None = None
        self._handle: asyncio.TimerHandle | None = None
        protocol = getattr(connection, "protocol", None)
        if self._timeout and protocol is not None and hasattr(protocol, "read_timeout"):
            # aiohttp drops its pending timer at the next packet (``read_timeout`` is public)
            protocol.read_timeout = None
        else:
            self._timeout = 0.0  # aiohttp keeps timing the body itself

    def at_eof(self) -> bool:
        return self._content.at_eof()

    def buffered(self) -> bool:
        """Whether bytes are waiting to be read (the next read would not wait for the peer)."""
        return bool(_pending(self._content))

    async def read(self) -> bytes:
        if self._failure is not None:
            raise self._failure
        if self._timeout:
            self._waiting_since = self._loop.time()
            if self._handle is None:
                self._handle = self._loop.call_at(self._waiting_since + self._timeout, self._check)
        try:
            return await self._content.readany()
        except TRANSPORT_ERRORS as exc:
            rest = b"".join(_pending(self._content))
            if not rest:
                raise
            self._failure = exc  # raised by the next read, after these bytes are used
            return rest
        finally:
            self._waiting_since = None

    def _check(self) -> None:
        self._handle = None
        since = self._waiting_since
        if since is None:
            return  # not reading now: the next read arms the timer again
        content = self._content
        if content.at_eof() or _pending(content):
            # bytes (or the end) arrived in this same loop turn, before the reader could run
            since = self._waiting_since = self._loop.time()
        due = since + self._timeout
        if self._loop.time() >= due:
            self._content.set_exception(
                aiohttp.ServerTimeoutError(
                    f"Timeout on reading data from socket ({self._timeout} s)"
                )
            )
        else:
            self._handle = self._loop.call_at(due, self._check)

    def close(self) -> None:
        """Stop the timer (the body is done with)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _pending(content: aiohttp.StreamReader) -> Sequence[bytes]:
    """The bytes aiohttp received but nobody read yet. Its reader keeps them in a private
    buffer (:mod:`streamagent._upstream.aiohttp_private`), which it drops when it records an
    error; ``test_llm_results_identical_to_stock_chat_openai.py`` (partial reply of a broken
    stream) and the first-token
    tests check we see it."""
    return aiohttp_private.pending_bytes(content)


async def _close_at_shutdown(
    sessions: AioSessions, loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncIterator[None]:
    """Parked at ``yield`` while the loop lives; its async-generator shutdown closes the session."""
    try:
        yield
    finally:
        sessions.forget(loop)
        await session.close()


class AioSessions:
    """One ``aiohttp.ClientSession`` per running event loop, closed when that loop shuts down."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, AsyncIterator[None]]
        ] = weakref.WeakKeyDictionary()

    def __len__(self) -> int:
        return len(self._sessions)

    def forget(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sessions.pop(loop, None)

    def current(self) -> aiohttp.ClientSession | None:
        """The running loop's session, if one was made."""
        entry = self._sessions.get(asyncio.get_running_loop())
        return entry[0] if entry else None

    async def get(self) -> aiohttp.ClientSession:
        """The running loop's session (made on first use)."""
        loop = asyncio.get_running_loop()
        entry = self._sessions.get(loop)
        if entry is not None:
            return entry[0]
        self._drop_closed_loops()
        connector = aiohttp.TCPConnector(
            limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS, ssl=_default_ssl()
        )
        session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            timeout=aiohttp.ClientTimeout(),
            read_bufsize=READ_BUFFER_BYTES,
        )
        closer = _close_at_shutdown(self, loop, session)
        self._sessions[loop] = (session, closer)
        await closer.__anext__()  # registered with the loop: closed by shutdown_asyncgens()
        return session

    def _drop_closed_loops(self) -> None:
        """Loops closed without closing async generators: nothing left to await, just forget."""
        for loop in [lp for lp in self._sessions if lp.is_closed()]:
            session, _closer = self._sessions.pop(loop)
            connector = session.connector
            session.detach()
            if connector is not None:
                # the loop is gone: only marks it closed (no warning)
                aiohttp_private.close_connector_now(connector)


#: The process's sessions, shared by every ``LeanChatOpenAI`` (one pool per event loop, as one
#: SDK client would have): a model object can be dropped at any time — a session it owned
#: would then be collected with its connections open, before its loop could close it.
SHARED_SESSIONS = AioSessions()
