"""``AsyncRedisStore``: the natively async shell of the Redis store.

Example:
    >>> from streamagent.memory import AsyncRedisStore
    >>> async def main() -> None:  # doctest: +SKIP
    ...     async with AsyncRedisStore.from_url("redis://127.0.0.1:6379/0") as store:
    ...         await store.asetup()
    ...         await store.aput(("users", "alice"), "profile", {"name": "Alice"})
    ...         print((await store.aget(("users", "alice"), "profile")).value)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
import redis.asyncio.cluster as aiocluster
from langgraph.store.base import Op, Result
from redis.exceptions import NoScriptError

from streamagent.errors import ConfigurationError
from streamagent.memory._errors import check_server_version, describe_client
from streamagent.memory.store_base import BaseRedisStore, Call, Embed, run_async
from streamagent.memory.store_sync import (
    CONNECTION_DEFAULTS,
    SCRIPTS,
    SHAS,
    _token,
    check_client,
    check_reply,
    store_error,
)

__all__ = ["AsyncRedisStore"]

logger = logging.getLogger(__name__)


class AsyncRedisStore(BaseRedisStore):
    """The async twin of :class:`~streamagent.memory.RedisStore` (same data, same rules).

    Takes a ``redis.asyncio`` client (or ``RedisCluster``). The sync ``batch`` works from
    other threads while the store's event loop runs (as LangGraph's async stores do).

    ``setup_on_first_use=True`` runs :meth:`asetup` before the first batch (once, however many
    batches start together): the schema check and the search path a synchronous caller such
    as ``build_agent`` cannot await. A failing setup fails that batch, which writes nothing,
    and the next batch tries again.

    Example:
        >>> import redis.asyncio as aioredis
        >>> store = AsyncRedisStore(aioredis.Redis(), key_prefix="app:store")
        >>> store.keys_for(("users",)).idx
        '{app:store:users}:idx'
    """

    def __init__(
        self,
        client: aioredis.Redis | aiocluster.RedisCluster,
        *,
        setup_on_first_use: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        check_client(client)
        self.client = client
        self._where = describe_client(client)
        self._cluster = isinstance(client, aiocluster.RedisCluster)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.setup_on_first_use = setup_on_first_use
        self._setup_lock = asyncio.Lock()  # binds to a loop on first use, not here

    @classmethod
    @asynccontextmanager
    async def from_url(cls, url: str, **options: Any) -> AsyncIterator[AsyncRedisStore]:
        """A store on a new async connection pool to ``url`` (closed on exit).

        Example:
            >>> async def main() -> None:  # doctest: +SKIP
            ...     async with AsyncRedisStore.from_url("redis://127.0.0.1:6379/0") as store:
            ...         await store.asetup()
        """
        connection = {**CONNECTION_DEFAULTS, **options.pop("connection_options", {})}
        client = aioredis.Redis.from_url(url, **connection)
        try:
            yield cls(client, **options)
        finally:
            await client.aclose()

    async def asetup(self) -> None:
        """Check the server and the storage schema, load the scripts, detect a server
        vector index and choose the search path (as :meth:`RedisStore.setup`)."""
        self._loop = asyncio.get_running_loop()
        try:
            info = await self.client.info("server")
            check_server_version(info, self._where)
            for body in SCRIPTS.values():
                await self.client.script_load(body)
        except redis.RedisError as exc:
            raise store_error(self._where, exc) from exc
        await run_async(self.plan_setup(), self._execute, self._embed)
        self.is_set_up = True

    async def _setup_once(self) -> None:
        async with self._setup_lock:
            if not self.is_set_up:
                await self.asetup()

    async def amigrate_storage(self) -> int:
        """Async :meth:`RedisStore.migrate_storage`."""
        return await run_async(self.plan_migrate(_token), self._execute, self._embed)

    def setup(self) -> None:
        """Sync :meth:`asetup` (from a thread other than the store's event loop)."""
        self._run_on_loop(self.asetup())

    def _any_node(self) -> dict[str, Any]:
        if isinstance(self.client, redis.RedisCluster | aiocluster.RedisCluster):
            return {"target_nodes": self.client.get_random_node()}
        return {}

    # ------------------------------------------------------------------ I/O
    async def _execute(self, calls: Sequence[Call]) -> list[Any]:
        try:
            try:
                return await self._send(calls)
            except NoScriptError:  # the server lost its script cache (restart, flush)
                for body in SCRIPTS.values():
                    await self.client.script_load(body)
                return await self._send(calls)
        except redis.RedisError as exc:
            raise store_error(self._where, exc) from exc

    async def _send(self, calls: Sequence[Call]) -> list[Any]:
        if self._cluster or len(calls) == 1:
            return [await self._one(call) for call in calls]
        pipe = self.client.pipeline(transaction=False)
        for call in calls:
            if call.script is None:
                pipe.execute_command(*call.args)
            else:
                pipe.execute_command(
                    "EVALSHA", SHAS[call.script], len(call.keys), *call.keys, *call.args
                )
        replies = list(await pipe.execute(raise_on_error=False))
        return [check_reply(call, reply) for call, reply in zip(calls, replies, strict=True)]

    async def _one(self, call: Call) -> Any:
        try:
            if call.script is None:
                routing = self._any_node() if call.args[0].startswith("FT.") else {}
                return await self.client.execute_command(*call.args, **routing)
            return await self.client.evalsha(
                SHAS[call.script], len(call.keys), *call.keys, *call.args
            )
        except redis.ResponseError as exc:
            if call.errors_as_values and not isinstance(exc, NoScriptError):
                return exc
            raise

    async def _embed(self, request: Embed) -> list[list[float]]:
        assert self.embeddings is not None
        if request.query:
            return [await self.embeddings.aembed_query(request.texts[0])]
        return await self.embeddings.aembed_documents(request.texts)

    # ------------------------------------------------------------------ BaseStore
    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run ``ops`` (reads first, then writes); bad input raises before any write."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        if self.setup_on_first_use and not self.is_set_up:
            await self._setup_once()
        return await run_async(self.plan_batch(ops), self._execute, self._embed)

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Sync :meth:`abatch`, from a thread other than the store's running event loop."""
        results: list[Result] = self._run_on_loop(self.abatch(list(ops)))
        return results

    def _run_on_loop(self, coro: Any) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = self._loop
        if loop is None or running is loop or not loop.is_running():
            coro.close()
            raise ConfigurationError(
                "AsyncRedisStore's sync methods run from another thread while the store's "
                "event loop runs; in async code use abatch/aget/aput/asearch"
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()
