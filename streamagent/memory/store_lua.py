"""Lua scripts of the Redis stores (pure strings, no I/O).

Each script touches the keys of ONE namespace (one hash tag, see
:mod:`streamagent.memory.store_core`), so it runs atomically on one node, also on Redis
Cluster. Times come from the server clock (``TIME``), the clock that expires keys.
``settle`` gives ``idx`` and ``ver`` the expiry of the namespace's last item (or none) and
returns that expiry as a string (``inf``), or false when the namespace is now empty.
"""

from __future__ import annotations

__all__ = ["DELETE_SCRIPT", "LIST_SCRIPT", "PUT_SCRIPT", "READ_SCRIPT", "VECTORS_SCRIPT"]

_COMMON = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function settle(idx, ver)
  local top = redis.call('ZRANGE', idx, -1, -1, 'WITHSCORES')
  if #top == 0 then
    redis.call('DEL', idx, ver)
    return false
  end
  if top[2] == 'inf' then
    redis.call('PERSIST', idx)
    redis.call('PERSIST', ver)
  else
    local at = string.format('%.0f', tonumber(top[2]))
    redis.call('PEXPIREAT', idx, at)
    redis.call('PEXPIREAT', ver, at)
  end
  return top[2]
end
local function ttl_of(doc)
  return tonumber(string.sub(doc, 1, string.find(doc, '\n', 1, true) - 1))
end
-- vector i of an item is the hash vprefix .. i .. ':' .. key; vector 0 holds the count n
local function vector_count(vec0)
  return tonumber(redis.call('HGET', vec0, 'n') or '0') or 0
end
local function drop_vectors(vec0, vprefix, key, from)
  local n = vector_count(vec0)
  for i = math.max(from, 1), n - 1 do redis.call('DEL', vprefix .. i .. ':' .. key) end
  if from == 0 then redis.call('DEL', vec0) end
end
local function expire_vectors(vec0, vprefix, key, ttl)
  local n = vector_count(vec0)
  for i = 0, n - 1 do
    local h = (i == 0) and vec0 or (vprefix .. i .. ':' .. key)
    if ttl > 0 then redis.call('PEXPIRE', h, ttl) else redis.call('PERSIST', h) end
  end
end
"""

# KEYS: idx, ver, doc, vec0[, registry]. ARGV: key, ttl ms (0: none), created µs,
# "updated\njson", version token, namespace name ('' on a Cluster), vector key prefix,
# pfx tags, n vectors, then the n float32 blobs (n = 0: not indexed).
# The registry key is passed only on a single node (on a Cluster it is in another slot).
PUT_SCRIPT = (
    _COMMON
    + r"""
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local created = ARGV[3]
local old = redis.call('GET', KEYS[3])
if old then
  local p = string.find(old, '\n', 1, true)
  local q = string.find(old, '\n', p + 1, true)
  created = string.sub(old, p + 1, q - 1)
end
local ttl = tonumber(ARGV[2])
local body = ARGV[2] .. '\n' .. created .. '\n' .. ARGV[4]
if ttl > 0 then
  redis.call('SET', KEYS[3], body, 'PX', ttl)
else
  redis.call('SET', KEYS[3], body)
end
local n = tonumber(ARGV[9])
-- a new item has no vectors yet (they share its TTL); an old one may have more than now
if old then drop_vectors(KEYS[4], ARGV[7], ARGV[1], n) end
for i = 0, n - 1 do
  local h = KEYS[4]
  if i == 0 then
    redis.call('HSET', h, 'vec', ARGV[10], 'pfx', ARGV[8], 'n', n)
  else
    h = ARGV[7] .. i .. ':' .. ARGV[1]
    redis.call('HSET', h, 'vec', ARGV[10 + i], 'pfx', ARGV[8])
  end
  if ttl > 0 then redis.call('PEXPIRE', h, ttl) elseif old then redis.call('PERSIST', h) end
end
local top
if ttl > 0 then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now + ttl), ARGV[1])
  redis.call('SET', KEYS[2], ARGV[5])
  top = settle(KEYS[1], KEYS[2])
else  -- the namespace now lives forever: no need to look for its last expiry
  redis.call('ZADD', KEYS[1], 'inf', ARGV[1])
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('PERSIST', KEYS[1])
  top = 'inf'
end
if KEYS[5] then redis.call('ZADD', KEYS[5], 'GT', top, ARGV[6]) end
return top
"""
)

# KEYS: idx, ver, doc, vec0[, registry]. ARGV: key, version token, namespace name,
# vector key prefix. On a single node an emptied namespace leaves the registry in the same
# atomic step.
DELETE_SCRIPT = (
    _COMMON
    + r"""
drop_vectors(KEYS[4], ARGV[4], ARGV[1], 0)
redis.call('DEL', KEYS[3])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms())
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('SET', KEYS[2], ARGV[2]) end
local top = settle(KEYS[1], KEYS[2])
if not top and KEYS[5] then redis.call('ZREM', KEYS[5], ARGV[3]) end
return top
"""
)

# KEYS: idx, ver, then doc, vec0 per item. ARGV: refresh ('1'/'0'), vector key prefix,
# then the item keys. Returns {namespace expiry or false (false too when nothing was
# refreshed), docs...}.
READ_SCRIPT = (
    _COMMON
    + r"""
local now = now_ms()
local out = {false}
local touched = false
for j = 1, #ARGV - 2 do
  local d = KEYS[2 * j + 1]
  local doc = redis.call('GET', d)
  out[j + 1] = doc or false
  if doc and ARGV[1] == '1' then
    local ttl = ttl_of(doc)
    if ttl > 0 then
      redis.call('PEXPIRE', d, ttl)
      expire_vectors(KEYS[2 * j + 2], ARGV[2], ARGV[j + 2], ttl)
      redis.call('ZADD', KEYS[1], 'XX', string.format('%.0f', now + ttl), ARGV[j + 2])
      touched = true
    end
  end
end
if touched then out[1] = settle(KEYS[1], KEYS[2]) end
return out
"""
)

# KEYS: idx, ver. ARGV: doc key prefix.
# Returns {version or false, key, doc, key, doc, ...} of the live items.
LIST_SCRIPT = (
    _COMMON
    + r"""
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
local out = {redis.call('GET', KEYS[2])}
for _, k in ipairs(keys) do
  local doc = redis.call('GET', ARGV[1] .. k)
  if doc then
    out[#out + 1] = k
    out[#out + 1] = doc
  end
end
return out
"""
)

# KEYS: idx, ver. ARGV: vector key prefix.
# Returns {version or false, key, vectors (concatenated) or false, ...} of the live items.
VECTORS_SCRIPT = (
    _COMMON
    + r"""
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now_ms(), '+inf')
local out = {redis.call('GET', KEYS[2])}
for _, k in ipairs(keys) do
  local head = redis.call('HMGET', ARGV[1] .. '0:' .. k, 'n', 'vec')
  local blob = head[2]
  local n = tonumber(head[1] or '0') or 0
  if n > 1 and blob then
    local parts = {blob}
    for i = 1, n - 1 do
      parts[#parts + 1] = redis.call('HGET', ARGV[1] .. i .. ':' .. k, 'vec') or ''
    end
    blob = table.concat(parts)
  end
  out[#out + 1] = k
  out[#out + 1] = blob or false
end
return out
"""
)
