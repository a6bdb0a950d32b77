"""Conversation memory on Redis: LangGraph checkpointers, the embedded server, and the
``ConversationManager`` view.

* :class:`RedisSaver` / :class:`AsyncRedisSaver` — ``BaseCheckpointSaver`` on plain Redis
  (>= 6.2), Valkey or Redis Cluster: core commands only, one hash tag per thread, atomic Lua
  writes, TTL on every key, ``keep_last``, each message stored once, strict deserialization.
* :class:`EmbeddedRedis`, :func:`default_redis_url`, :func:`default_data_dir` — a private,
  persistent redis-server when ``REDIS_URL`` is not set.
* :class:`RedisStore` / :class:`AsyncRedisStore` — LangGraph's long-term memory ``BaseStore``
  on the same plain Redis: namespaces, filters, TTL, Cluster-safe; semantic search exact on any
  server, through the server's own vector index where it has one (:class:`VectorSearchConfig`).
* :class:`ConversationManager` with :class:`MemoryConfig` — add/get/clear messages of a
  session, a view over the same saver thread the agent uses.
"""

from streamagent.memory.aio import AsyncRedisSaver
from streamagent.memory.config import MemoryConfig
from streamagent.memory.conversation import ConversationManager
from streamagent.memory.embedded import EmbeddedRedis, default_data_dir, default_redis_url
from streamagent.memory.serde import StrictSerializer, UnsafeDeserializationError
from streamagent.memory.store_aio import AsyncRedisStore
from streamagent.memory.store_core import StoreInputError, StoreNamespaceError
from streamagent.memory.store_default import default_store
from streamagent.memory.store_index import VectorSearchConfig
from streamagent.memory.store_schema import StoreSchemaError
from streamagent.memory.store_sync import RedisStore
from streamagent.memory.store_tools import memory_tools
from streamagent.memory.sync import RedisSaver

__all__ = [
    "AsyncRedisSaver",
    "AsyncRedisStore",
    "ConversationManager",
    "EmbeddedRedis",
    "MemoryConfig",
    "RedisSaver",
    "RedisStore",
    "StoreInputError",
    "StoreNamespaceError",
    "StoreSchemaError",
    "StrictSerializer",
    "UnsafeDeserializationError",
    "VectorSearchConfig",
    "default_data_dir",
    "default_store",
    "memory_tools",
    "default_redis_url",
]
