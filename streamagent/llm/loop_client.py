"""The stock path's async HTTP client: one pooled client per event loop.

An async HTTP client's pooled connections belong to the event loop that opened them. The
default client ``ChatOpenAI`` builds is one object for the model's life (langchain-openai even
shares one per base URL and timeout across the process), so a model used from a second event
loop — a second ``asyncio.run``, a worker thread with its own loop, a test per loop — reuses a
connection of a closed loop and fails with ``RuntimeError: Event loop is closed``.

:class:`PerLoopAsyncClient` is the openai SDK's default async client (its limits, redirects and
proxy environment) whose requests go to a client of the *running* loop, made on first use and
closed when that loop shuts down (``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio shut
async generators down before closing). :func:`~streamagent.llm.factory.create_chat_model`
gives one to every model it builds; the lean transport has its own per-loop sessions
(:mod:`streamagent.llm.lean.transport`) and treats this client as the default one.

Example:
    >>> import asyncio
    >>> client = PerLoopAsyncClient(timeout=5.0)
    >>> async def current() -> object:
    ...     return await client.for_running_loop()
    >>> first, second = asyncio.run(current()), asyncio.run(current())
    >>> first is second, first.is_closed, client.loop_count
    (False, True, 0)
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

import openai

__all__ = ["PerLoopAsyncClient", "is_per_loop_client"]

#: The openai SDK's async HTTP client class (``httpx2``'s in openai 3, ``httpx``'s in openai 2),
#: with the SDK's defaults.
_SdkAsyncClient: Any = openai.DefaultAsyncHttpxClient
#: That client's HTTP library (``httpx2`` or ``httpx``).
_http: Any = importlib.import_module(
    next(c for c in _SdkAsyncClient.__mro__ if c.__name__ == "AsyncClient").__module__.partition(
        "."
    )[0]
)


class _NoTransport(_http.AsyncBaseTransport):  # type: ignore[misc]
    """The outer client's transport: it never sends (``send`` is overridden), so it keeps no
    pool and costs no TLS context (~25 ms to load the CA bundle)."""

    async def handle_async_request(self, request: Any) -> Any:
        raise RuntimeError("PerLoopAsyncClient sends through the running loop's client")


class PerLoopAsyncClient(_SdkAsyncClient):  # type: ignore[misc]
    """The SDK's default async HTTP client, with one pooled client per running event loop.

    Keyword options are those of ``openai.DefaultAsyncHttpxClient`` (``timeout``,
    ``base_url``, ``limits`` …); each loop's client is made with the same options. The
    object itself sends nothing: ``send`` hands the request to the running loop's client.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**{**options, "transport": _NoTransport(), "trust_env": False})
        self._options = dict(options)
        self._lock = threading.Lock()
        # each loop's client and the parked generator that closes it at the loop's shutdown
        # (held here: the loop keeps only a weak reference to it)
        self._clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[Any, AsyncIterator[None]]
        ] = weakref.WeakKeyDictionary()

    @property
    def loop_count(self) -> int:
        """How many event loops have a client now (a shut-down loop's is closed and forgotten).

        Not ``__len__``: the SDK and ``ChatOpenAI`` test the client for truth, and an empty
        one must not read as "no client"."""
        return len(self._clients)

    async def for_running_loop(self) -> Any:
        """The running loop's client, made (and registered to close at loop shutdown) on
        first use."""
        loop = asyncio.get_running_loop()
        entry = self._clients.get(loop)
        if entry is not None:
            return entry[0]
        with self._lock:  # another thread's loop may be making its own client now
            for closed in [lp for lp in self._clients if lp.is_closed()]:
                # closed without shutting async generators down: nothing can be awaited on
                # it any more; its connections go with the garbage collector
                self._clients.pop(closed, None)
            client = _SdkAsyncClient(**self._options)
            closer = self._close_at_shutdown(client)
            self._clients[loop] = (client, closer)
        # started, the generator is one the loop closes in shutdown_asyncgens(); it parks at
        # its first yield without suspending, so no other task of this loop runs in between
        await closer.__anext__()
        return client

    async def _close_at_shutdown(self, client: Any) -> AsyncIterator[None]:
        """Parked at ``yield`` while the loop lives; the loop's shutdown (or this object's
        collection) closes it, and so the loop's client. Holds no reference to the loop."""
        try:
            yield
        finally:
            loop = asyncio.get_running_loop()
            with self._lock:
                entry = self._clients.get(loop)
                if entry is not None and entry[0] is client:
                    del self._clients[loop]
            await client.aclose()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        """Send ``request`` on the running loop's client (the SDK's only way out)."""
        client = await self.for_running_loop()
        return await client.send(request, **kwargs)

    async def aclose(self) -> None:
        """Close the running loop's client and this object."""
        with self._lock:
            entry = self._clients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        await super().aclose()


def is_per_loop_client(client: object) -> bool:
    """Whether ``client`` is a :class:`PerLoopAsyncClient` (the default the factory gives)."""
    return type(client) is PerLoopAsyncClient
