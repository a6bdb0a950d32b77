"""The store's storage schema: checked by setup(), and the migration from schema 1 (no I/O).

Schema 1 (streamagent's first store) kept an item's vectors as one STRING
``{P:E}:v:<key>`` (float32, concatenated). Schema 2 keeps one HASH per vector,
``P:v:{P:E}:<i>:<key>`` (``vec``, ``pfx`` and, on vector 0, ``n``), which a server's vector
index can index (see :mod:`streamagent.memory.store_core`). Items, their index and the
namespace registry are unchanged.

``setup()`` reads ``P:schema``: ``"2"`` is this layout; a missing key on a store that holds
data (its namespace registry exists) means schema 1 — setup() then raises
:class:`StoreSchemaError` instead of searching vectors it cannot see, and
``migrate_storage()`` converts the data in place (one atomic script per namespace) and
records schema 2. A missing key on an empty store is simply set.
"""

from __future__ import annotations

from typing import Any

from streamagent.errors import ConfigurationError
from streamagent.memory.store_core import Call, Plan, prefix_tags, split_namespace

__all__ = ["MIGRATE_SCRIPT", "STORE_SCHEMA", "SchemaPlanner", "StoreSchemaError"]

#: The storage schema this code reads and writes.
STORE_SCHEMA = "2"


class StoreSchemaError(ConfigurationError):
    """The stored data uses another storage schema than this version of streamagent."""


# KEYS: idx, ver. ARGV: old vector prefix "{P:E}:v:", new vector prefix "P:v:{P:E}:",
# pfx tags, vector width in bytes (0: unknown), version token.
# Returns the number of items converted, or -1 when vectors exist and the width is unknown.
MIGRATE_SCRIPT = r"""
local width = tonumber(ARGV[4])
local converted = 0
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local old = ARGV[1] .. k
  local blob = redis.call('GET', old)
  if blob then
    if width == 0 then return -1 end
    local pttl = redis.call('PTTL', old)
    local n = 0
    for i = 0, math.floor(#blob / width) - 1 do
      local chunk = string.sub(blob, i * width + 1, (i + 1) * width)
      if string.find(chunk, '[^%z]') then
        local h = ARGV[2] .. n .. ':' .. k
        redis.call('HSET', h, 'vec', chunk, 'pfx', ARGV[3])
        if pttl > 0 then redis.call('PEXPIRE', h, pttl) end
        n = n + 1
      end
    end
    if n > 0 then redis.call('HSET', ARGV[2] .. '0:' .. k, 'n', n) end
    redis.call('DEL', old)
    converted = converted + 1
  end
end
if converted > 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[2], ARGV[5], 'KEEPTTL')
end
return converted
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class SchemaPlanner:
    """Base of the Redis stores: the schema check of setup() and the migration."""

    key_prefix: str
    registry_key: str
    dims: int

    @property
    def schema_key(self) -> str:
        return f"{self.key_prefix}:schema"

    def plan_schema_check(self) -> Plan[None]:
        """Raise :class:`StoreSchemaError` for data of another schema; mark an empty store."""
        found, registry = yield [
            Call(None, (), ("GET", self.schema_key)),
            Call(None, (), ("EXISTS", self.registry_key)),
        ]
        if found is None and int(registry):
            raise StoreSchemaError(
                f"the store at key prefix {self.key_prefix!r} holds data of streamagent's "
                "storage schema 1 (vectors as strings), which this version cannot search: "
                "call store.migrate_storage() once (it converts the vectors in place; items "
                "stay as they are), then setup()"
            )
        if found is None:
            yield [Call(None, (), ("SET", self.schema_key, STORE_SCHEMA, "NX"))]
        elif _text(found) != STORE_SCHEMA:
            raise StoreSchemaError(
                f"the store at key prefix {self.key_prefix!r} uses storage schema "
                f"{_text(found)}; this version of streamagent reads schema {STORE_SCHEMA}"
            )

    def plan_migrate(self, tokens: Any) -> Plan[int]:
        """Convert schema-1 vectors of every registered namespace; returns the items
        converted. ``tokens()`` makes a fresh version token."""
        from streamagent.memory.store_core import NamespaceKeys

        (names,) = yield [Call(None, (), ("ZRANGE", self.registry_key, "0", "-1"))]
        converted = 0
        for name in names:
            ns = split_namespace(_text(name))
            nk = NamespaceKeys.of(self.key_prefix, ns)
            args = (nk.tag + ":v:", nk.vec_prefix, prefix_tags(ns), 4 * self.dims, tokens())
            (count,) = yield [Call("migrate", (nk.idx, nk.ver), args)]
            if int(count) < 0:
                raise StoreSchemaError(
                    f"namespace {ns!r} has schema-1 vectors: create the store with the "
                    "index config (dims) they were written with to migrate them"
                )
            converted += int(count)
        yield [Call(None, (), ("SET", self.schema_key, STORE_SCHEMA))]
        return converted
