"""The sans-I/O protocol between the savers' logic and their sync / async shells.

Every saver operation (``put``, ``get_tuple``, ``list``, ``setup``...) is written once, as a
generator (an :data:`Op`) that *yields* the I/O it needs and receives each reply::

    reply = yield Command(("EVALSHA", sha, 11, *keys, *args))

and returns its result. It never touches a socket. A shell runs it with a *driver*:
:func:`drive` / :func:`iterate` with a blocking ``execute(request) -> reply``
(:class:`~streamagent.memory.RedisSaver`), :func:`adrive` / :func:`aiterate` with an
``async`` one (:class:`~streamagent.memory.AsyncRedisSaver`). A request that fails is
thrown into the operation at its ``yield``, which maps the error (or cleans up and raises it
again). So both shells make exactly the same round trips in the same order for the same
operation: there is only one place that decides them.

Requests (each is one round trip, except :class:`Scan`, a cursor loop):

* :class:`Command`: one command (``client.execute_command(*args)``: redis-py's reply
  parsing and retry policy apply).
* :class:`Batch`: several commands in one non-transactional pipeline.
* :class:`Scan`: every key matching a pattern (``scan_iter``; on Redis Cluster every node).
* :class:`Blocking`: a blocking function that is not Redis (the TLS probe); the async shell
  runs it in a worker thread.

An operation may also yield :class:`Emit` items (``list``): :func:`iterate` /
:func:`aiterate` hand them to the caller as they come, :func:`drive` / :func:`adrive` drop
them (``setup``'s probe lists a thread only to exercise the commands).

Example:
    >>> def double_get(key):
    ...     first = yield Command(("GET", key))
    ...     second = yield Command(("GET", key))
    ...     return [first, second]
    >>> sent = []
    >>> drive(double_get("k"), lambda request: sent.append(request) or b"v")
    [b'v', b'v']
    >>> len(sent)
    2
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, NamedTuple, TypeAlias, TypeVar, cast

__all__ = [
    "Batch",
    "Blocking",
    "Command",
    "Emit",
    "Op",
    "Request",
    "Scan",
    "Stepper",
    "adrive",
    "aiterate",
    "drive",
    "iterate",
    "pack_command",
]

T = TypeVar("T")


class Command(NamedTuple):
    """One Redis command (one round trip)."""

    args: tuple[Any, ...]


class Batch(NamedTuple):
    """Commands sent together in one non-transactional pipeline (one round trip); the
    reply is the list of their replies."""

    commands: tuple[tuple[Any, ...], ...]


class Scan(NamedTuple):
    """Every key matching ``match`` (SCAN, asking ``count_hint`` keys a call); the reply is
    the list of keys."""

    match: str
    count_hint: int


class Blocking(NamedTuple):
    """``function(*args)``: blocking work that is not Redis (run in a worker thread by the
    async shell)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]


class Emit(NamedTuple):
    """An item an operation hands to its caller (``list``)."""

    item: Any


Request: TypeAlias = Command | Batch | Scan | Blocking
#: a saver operation: yields requests (and emitted items), receives replies, returns T
Op: TypeAlias = Generator[Request | Emit, Any, T]


def pack_command(args: tuple[Any, ...]) -> bytes:
    """``args`` as one RESP command (str as UTF-8, int and float in decimal), in one
    ``join`` (redis-py's packer re-copies its buffer for every argument).

    >>> pack_command(("GET", b"k", 7))
    b'*3\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n$1\\r\\n7\\r\\n'
    """
    out: list[bytes] = [b"*%d\r\n" % len(args)]
    for arg in args:
        kind = type(arg)
        if kind is bytes:
            data = arg
        elif kind is str:
            data = arg.encode()
        elif kind is int or kind is float:
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send a {kind.__name__} to Redis")
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(out)


class Stepper(Generic[T]):
    """One operation in progress: its pending :attr:`request` (``None`` once it returned
    :attr:`result`) and, when ``collect``, the items it emitted meanwhile."""

    __slots__ = ("_collect", "_emitted", "_op", "request", "result")

    def __init__(self, op: Op[T], *, collect: bool = False) -> None:
        self._op = op
        self._collect = collect
        self._emitted: list[Any] = []
        self.request: Request | None = None
        self.result: T | None = None
        self._advance(op.send, None)

    def reply(self, value: Any) -> None:
        """Hand the reply of :attr:`request` to the operation; it runs to its next one."""
        self._advance(self._op.send, value)

    def fail(self, exc: BaseException) -> None:
        """Raise the failure of :attr:`request` inside the operation (which maps it, or
        cleans up and raises it again)."""
        self._advance(self._op.throw, exc)

    def emitted(self) -> list[Any]:
        """The items emitted since the last call."""
        items, self._emitted = self._emitted, []
        return items

    def _advance(self, resume: Callable[[Any], Request | Emit], value: Any) -> None:
        try:
            step = resume(value)
            while type(step) is Emit:
                if self._collect:
                    self._emitted.append(step.item)
                step = self._op.send(None)
        except StopIteration as stop:
            self.request = None
            self.result = stop.value
            return
        self.request = cast("Request", step)


def _perform(run: Stepper[Any], execute: Callable[[Request], Any]) -> None:
    request = cast("Request", run.request)
    try:
        reply = execute(request)
    except BaseException as exc:  # noqa: BLE001 - the operation maps it or raises it again
        run.fail(exc)
    else:
        run.reply(reply)


def drive(op: Op[T], execute: Callable[[Request], Any]) -> T:
    """Run ``op`` to its result, performing each request with the blocking ``execute``."""
    run = Stepper(op)
    while run.request is not None:
        _perform(run, execute)
    return cast("T", run.result)


def iterate(op: Op[Any], execute: Callable[[Request], Any]) -> Iterator[Any]:
    """Run ``op`` lazily, yielding what it emits (a request is made only when the caller
    asks for more)."""
    run = Stepper(op, collect=True)
    yield from run.emitted()
    while run.request is not None:
        _perform(run, execute)
        yield from run.emitted()


async def _aperform(run: Stepper[Any], execute: Callable[[Request], Awaitable[Any]]) -> None:
    request = cast("Request", run.request)
    try:
        reply = await execute(request)
    except BaseException as exc:  # noqa: BLE001 - the operation maps it or raises it again
        run.fail(exc)
    else:
        run.reply(reply)


async def adrive(op: Op[T], execute: Callable[[Request], Awaitable[Any]]) -> T:
    """:func:`drive` with an ``async`` ``execute``."""
    run = Stepper(op)
    while run.request is not None:
        await _aperform(run, execute)
    return cast("T", run.result)


async def aiterate(op: Op[Any], execute: Callable[[Request], Awaitable[Any]]) -> AsyncIterator[Any]:
    """:func:`iterate` with an ``async`` ``execute``."""
    run = Stepper(op, collect=True)
    for item in run.emitted():
        yield item
    while run.request is not None:
        await _aperform(run, execute)
        for item in run.emitted():
            yield item
