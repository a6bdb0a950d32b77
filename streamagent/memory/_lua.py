"""Lua scripts of the Redis savers (pure strings, no I/O).

Every script receives the eight keys of ONE thread (see
:func:`streamagent.memory.base.thread_keys`), which share one hash tag, so each script
runs atomically on one node, also on Redis Cluster.

Keys (``KEYS[i]``)::

    1 cp     HASH  "ns\\0id" -> checkpoint record (msgpack: checkpoint, metadata, parent id)
    2 refs   HASH  "ns\\0id" -> "channel\\0version" entries joined by "\\1" (blobs it references)
    3 idx    ZSET  "ns\\0id", score 0 (lexicographic: ids are time ordered)
    4 blobs  HASH  "ns\\0channel\\0version" -> typed value
    5 msgs   HASH  message ref (24 hex chars of a content digest) -> typed message
    6 w      HASH  "ns\\0id\\0task_id\\0idx" -> "type\\0channel\\0task_path\\0payload"
    7 wi     ZSET  the fields of ``w``, score 0 (lexicographic, per checkpoint ranges)
    8 ns     ZSET  namespace -> insertion sequence

Typed values are ``type\\0payload``. Type ``R`` is a list of messages stored as the
concatenation of their refs; type ``D`` is ``D\\0<base version>\\0<refs>``: the list of the blob
``<base version>`` of the same channel followed by ``<refs>`` (appends stored once).
``READ_SCRIPT`` (``ARGV``: ttl, refs to skip, then ``ns, id`` pairs) returns the messages its
checkpoints reference, except the refs to skip (messages the client holds decoded), as their
refs concatenated and a list of their values (nil: missing).
Writes are applied last-record-last: blobs and messages before the checkpoint record, so a
failure part-way never leaves a readable half checkpoint.
"""

from __future__ import annotations

__all__ = ["PUT_SCRIPT", "PUT_WRITES_SCRIPT", "READ_SCRIPT"]

_COMMON = r"""
local REF_LEN = 24
local function touch(ttl)
  if ttl > 0 then
    for i = 1, 8 do redis.call('EXPIRE', KEYS[i], ttl) end
  end
end
local function split_refs(s, out)
  for i = 1, #s, REF_LEN do out[#out + 1] = string.sub(s, i, i + REF_LEN - 1) end
end
-- refs held by a typed blob value (R or D), appended to out
local function blob_refs(v, out)
  local t = string.sub(v, 1, 2)
  if t == 'R\0' then
    split_refs(string.sub(v, 3), out)
  elseif t == 'D\0' then
    local p = string.find(v, '\0', 3, true)
    split_refs(string.sub(v, p + 1), out)
  end
end
-- payload start of a write record "type\0channel\0task_path\0payload"
local function write_payload(v)
  local p = string.find(v, '\0', 1, true)
  p = string.find(v, '\0', p + 1, true)
  p = string.find(v, '\0', p + 1, true)
  return string.sub(v, p + 1)
end
local function write_refs(v, out)
  if string.sub(v, 1, 2) == 'R\0' then split_refs(write_payload(v), out) end
end
-- HSET key with the field/value pairs t[first..last] (variadic, in bounded chunks)
local function hset_range(key, t, first, last)
  for start = first, last, 1000 do
    redis.call('HSET', key, unpack(t, start, math.min(start + 999, last)))
  end
end
"""

READ_SCRIPT = (
    _COMMON
    + r"""
-- resolve a D chain into one R value
local function resolve(ns, channel, v)
  if string.sub(v, 1, 2) ~= 'D\0' then return v end
  local chunks = {}
  local cur = v
  local hops = 0
  while string.sub(cur, 1, 2) == 'D\0' do
    local p = string.find(cur, '\0', 3, true)
    chunks[#chunks + 1] = string.sub(cur, p + 1)
    local base = string.sub(cur, 3, p - 1)
    cur = redis.call('HGET', KEYS[4], ns .. '\0' .. channel .. '\0' .. base)
    hops = hops + 1
    if (not cur) or hops > 10000 then
      error('streamagent: message list of channel ' .. channel .. ' references a missing base')
    end
  end
  local parts = {string.sub(cur, 3)}
  for i = #chunks, 1, -1 do parts[#parts + 1] = chunks[i] end
  return 'R\0' .. table.concat(parts)
end

-- refs the client holds decoded (ARGV[2], concatenated) are not sent back; the others are
-- collected once each in uniq
local held = ARGV[2]
local seen, uniq = {}, {}
local function is_held(ref)
  local from = 1
  while true do
    local s = string.find(held, ref, from, true)
    if not s then return false end
    if (s - 1) % REF_LEN == 0 then return true end
    from = s + 1
  end
end
local function want_ref(ref)
  if not seen[ref] then
    seen[ref] = true
    if not is_held(ref) then uniq[#uniq + 1] = ref end
  end
end
-- the refs of a list (concatenated refs); a run of it equal to the held refs from the
-- position of its first ref (appends, sliding windows) is skipped with one comparison
local function want_refs(s)
  local start = 1
  if #held > 0 and #s > 0 then
    local p = string.find(held, string.sub(s, 1, REF_LEN), 1, true)
    if p and (p - 1) % REF_LEN == 0 then
      local run = math.min(#held - p + 1, #s)
      if string.sub(s, 1, run) == string.sub(held, p, p + run - 1) then start = run + 1 end
    end
  end
  for i = start, #s, REF_LEN do want_ref(string.sub(s, i, i + REF_LEN - 1)) end
end

local function load_one(ns, id)
  if id == '' then
    local r = redis.call('ZREVRANGEBYLEX', KEYS[3], '(' .. ns .. '\1', '[' .. ns .. '\0',
                         'LIMIT', 0, 1)
    if #r == 0 then return false end
    id = string.sub(r[1], #ns + 2)
  end
  local f = ns .. '\0' .. id
  local rec = redis.call('HGET', KEYS[1], f)
  if not rec then return false end
  local refs = redis.call('HGET', KEYS[2], f) or ''
  local vals = {}
  if refs ~= '' then
    local fields, chans = {}, {}
    for entry in string.gmatch(refs, '([^\1]+)') do
      local p = string.find(entry, '\0', 1, true)
      chans[#chans + 1] = string.sub(entry, 1, p - 1)
      fields[#fields + 1] = ns .. '\0' .. entry
    end
    local raw = redis.call('HMGET', KEYS[4], unpack(fields))
    for i = 1, #fields do
      local v = raw[i]
      if v then
        v = resolve(ns, chans[i], v)
        if string.sub(v, 1, 2) == 'R\0' then want_refs(string.sub(v, 3)) end
      end
      vals[i] = v
    end
  end
  local wf = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. f .. '\0', '(' .. f .. '\1')
  local wv = {}
  if #wf > 0 then
    wv = redis.call('HMGET', KEYS[6], unpack(wf))
    for i = 1, #wf do
      local v = wv[i]
      if v and string.sub(v, 1, 2) == 'R\0' then want_refs(write_payload(v)) end
    end
  end
  return {id, rec, refs, vals, wf, wv}
end

local ttl = tonumber(ARGV[1])
local results = {}
local found = false
for i = 3, #ARGV, 2 do
  local r = load_one(ARGV[i], ARGV[i + 1])
  results[#results + 1] = r
  if r then found = true end
end
local mv = {}
for start = 1, #uniq, 1000 do
  local part = redis.call('HMGET', KEYS[5], unpack(uniq, start, math.min(start + 999, #uniq)))
  for j = 1, #part do mv[#mv + 1] = part[j] end
end
if found and ARGV[1] ~= '0' then touch(ttl) end
return {results, table.concat(uniq), mv}
"""
)

PUT_SCRIPT = (
    _COMMON
    + r"""
local function remove_cp(f, cand)
  local refs = redis.call('HGET', KEYS[2], f) or ''
  local p = string.find(f, '\0', 1, true)
  local ns = string.sub(f, 1, p - 1)
  for entry in string.gmatch(refs, '([^\1]+)') do cand[ns .. '\0' .. entry] = true end
  redis.call('HDEL', KEYS[1], f)
  redis.call('HDEL', KEYS[2], f)
  redis.call('ZREM', KEYS[3], f)
  local wf = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. f .. '\0', '(' .. f .. '\1')
  if #wf > 0 then
    redis.call('HDEL', KEYS[6], unpack(wf))
    redis.call('ZREM', KEYS[7], unpack(wf))
  end
end

local function members(ns)
  return redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ns .. '\0', '(' .. ns .. '\1')
end

local function collect_garbage(cand)
  -- blobs no remaining checkpoint references
  local live = {}
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local p = string.find(all[i], '\0', 1, true)
    local ns = string.sub(all[i], 1, p - 1)
    for entry in string.gmatch(all[i + 1], '([^\1]+)') do live[ns .. '\0' .. entry] = true end
  end
  for field, _ in pairs(cand) do
    if not live[field] then redis.call('HDEL', KEYS[4], field) end
  end
  -- messages no remaining blob or write references
  local refs = {}
  for _, v in ipairs(redis.call('HVALS', KEYS[4])) do blob_refs(v, refs) end
  for _, v in ipairs(redis.call('HVALS', KEYS[6])) do write_refs(v, refs) end
  local keep = {}
  for _, r in ipairs(refs) do keep[r] = true end
  for _, r in ipairs(redis.call('HKEYS', KEYS[5])) do
    if not keep[r] then redis.call('HDEL', KEYS[5], r) end
  end
  -- namespaces left without checkpoints
  for _, ns in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
    if #members(ns) == 0 then redis.call('ZREM', KEYS[8], ns) end
  end
end

local function trim(ns, keep)
  local cand = {}
  local removed = 0
  local m = members(ns)
  for i = 1, #m - keep do remove_cp(m[i], cand); removed = removed + 1 end
  if ns == '' then
    local kept = members('')
    local cutoff = string.sub(kept[1], 2)
    for _, other in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
      if other ~= '' then
        for _, f in ipairs(members(other)) do
          if string.sub(f, #other + 2) < cutoff then remove_cp(f, cand); removed = removed + 1 end
        end
      end
    end
  end
  if removed > 0 then collect_garbage(cand) end
end

local ttl = tonumber(ARGV[1])
local keep_last = tonumber(ARGV[2])
local ns, id, rec, refs = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local nblobs, nmsgs, nknown, nbases = tonumber(ARGV[7]), tonumber(ARGV[8]),
  tonumber(ARGV[9]), tonumber(ARGV[10])
local i = 11
local blob_args = {}
for _ = 1, nblobs do
  blob_args[#blob_args + 1] = ns .. '\0' .. ARGV[i]
  blob_args[#blob_args + 1] = ARGV[i + 1]
  i = i + 2
end
local msg_start = i
i = i + 2 * nmsgs
for _ = 1, nknown do
  if redis.call('HEXISTS', KEYS[5], ARGV[i]) == 0 then return 0 end
  i = i + 1
end
for _ = 1, nbases do
  if redis.call('HEXISTS', KEYS[4], ns .. '\0' .. ARGV[i]) == 0 then return 0 end
  i = i + 1
end
hset_range(KEYS[5], ARGV, msg_start, msg_start + 2 * nmsgs - 1)
hset_range(KEYS[4], blob_args, 1, #blob_args)
local f = ns .. '\0' .. id
if not redis.call('ZSCORE', KEYS[8], ns) then
  redis.call('ZADD', KEYS[8], redis.call('ZCARD', KEYS[8]), ns)
end
redis.call('HSET', KEYS[2], f, refs)
redis.call('HSET', KEYS[1], f, rec)
redis.call('ZADD', KEYS[3], 0, f)
if keep_last > 0 then trim(ns, keep_last) end
touch(ttl)
return 1
"""
)

PUT_WRITES_SCRIPT = (
    _COMMON
    + r"""
local ttl = tonumber(ARGV[1])
local nwrites, nmsgs, nknown = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5 + 3 * nwrites + 2 * nmsgs
for _ = 1, nknown do
  if redis.call('HEXISTS', KEYS[5], ARGV[i]) == 0 then return 0 end
  i = i + 1
end
local m = 5 + 3 * nwrites
hset_range(KEYS[5], ARGV, m, m + 2 * nmsgs - 1)
for j = 5, 5 + 3 * nwrites - 1, 3 do
  local field, value = ARGV[j + 1], ARGV[j + 2]
  if ARGV[j] == '1' then
    redis.call('HSET', KEYS[6], field, value)
    redis.call('ZADD', KEYS[7], 0, field)
  elseif redis.call('HSETNX', KEYS[6], field, value) == 1 then
    redis.call('ZADD', KEYS[7], 0, field)
  end
end
touch(ttl)
return 1
"""
)
