"""``MemoryConfig``: where conversation memory lives and how much of it is kept.

Example:
    >>> cfg = MemoryConfig(host="cache", password="hunter2", ttl_seconds=600)
    >>> "hunter2" in repr(cfg), cfg.redis_url()
    (False, 'redis://:hunter2@cache:6379/0')
    >>> "hunter2" in repr(MemoryConfig(url="redis://:hunter2@cache:6379/0"))
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from streamagent.errors import ConfigurationError, redact

__all__ = ["MemoryConfig"]


@dataclass(frozen=True, kw_only=True)
class MemoryConfig:
    """Redis location (``url``, else ``host``/``port``/``password``/``db``) and limits.

    ``ttl_seconds``: lifetime of an idle conversation (renewed on each write; None = forever).
    ``max_messages`` / ``max_tokens``: enforced on each write with the pruning rules (system
    messages and the newest turn kept, tool calls kept with their results); None = no limit.
    ``model``: the tokenizer used to count ``max_tokens``. ``key_prefix``: Redis key namespace.
    """

    url: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    password: str | None = field(default=None, repr=False)
    db: int = 0
    ttl_seconds: int | None = 3600
    max_messages: int | None = 100
    max_tokens: int | None = 4000
    key_prefix: str = "streamagent"
    model: str = "gpt-4o"

    def __post_init__(self) -> None:
        for name in ("ttl_seconds", "max_messages", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"MemoryConfig.{name} must be positive or None: {value}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"MemoryConfig.port out of range: {self.port}")

    def redis_url(self) -> str:
        """``url`` if given, else a URL built from host, port, password and db."""
        if self.url:
            return self.url
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/{self.db}"

    def __repr__(self) -> str:
        url = redact(self.url) if self.url else None
        return (
            f"MemoryConfig(url={url!r}, host={self.host!r}, port={self.port}, db={self.db}, "
            f"password={'***' if self.password else None}, ttl_seconds={self.ttl_seconds}, "
            f"max_messages={self.max_messages}, max_tokens={self.max_tokens}, "
            f"key_prefix={self.key_prefix!r}, model={self.model!r})"
        )
