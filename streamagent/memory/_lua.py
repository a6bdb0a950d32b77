"""Lua scripts of the Redis savers (pure strings, no I/O).

Every script receives the eleven keys of ONE thread (see
:func:`streamagent.memory.base.thread_keys`), which share one hash tag, so each script
runs atomically on one node, also on Redis Cluster.

Keys (``KEYS[i]``)::

    1 cp     HASH  "ns\\0id" -> checkpoint record (msgpack: checkpoint, metadata, parent id)
    2 refs   HASH  "ns\\0id" -> "<parent id>\\2" + "channel\\0version" entries joined by "\\1"
    3 idx    ZSET  "ns\\0id", score 0 (lexicographic: LangGraph's listing order)
    4 blobs  HASH  "ns\\0channel\\0version" -> typed value
    5 msgs   HASH  message ref (24 hex chars of a content digest) -> typed message
    6 w      HASH  "ns\\0id\\0task_id\\0idx" -> "type\\0channel\\0task_path\\0payload"
    7 wi     ZSET  the fields of ``w``, score 0 (lexicographic, per checkpoint ranges)
    8 ns     ZSET  namespace -> insertion sequence
    9 head   HASH  namespace -> id of its head checkpoint (the last one written);
                   "\\1k" -> manifest: which of keys 1-8 must exist ("1"/"0" each)
   10 seen   HASH  "s" -> "1" while the thread lives, "0" after ``delete_thread``;
                   "f" -> the thread's fencing counter (the last turn token issued). It
                   outlives the data by the saver's notice window, so an expired thread can
                   be told apart from one that never existed, and a late writer of a turn
                   from before an expiry or deletion stays fenced out
   11 turn   STRING the token of the turn holding the thread (expires; see ``turns.py``)

"Latest" is the head pointer, advanced in the same script as the write, never the largest
id: a worker whose clock is skewed (uuid6 ids come from the local clock) can neither hide its
own checkpoint nor later ones. Every script that reads or writes first checks the manifest:
a key that should exist and does not (evicted, deleted by hand) is reported as ``C<piece>``,
never read as an empty thread. ``R``/``D`` typed values are lists of messages (``R``: their
refs concatenated; ``D``: ``D\\0<base version>\\0<refs>`` = the base blob of the same channel
followed by ``<refs>``); ``S`` is a ``DeltaChannel`` snapshot of a message list (refs).
The refs of a checkpoint name only blobs that existed when it was
written, so a referenced blob that is missing was lost.
Writes are applied last-record-last: blobs and messages before the checkpoint record, so a
failure part-way never leaves a readable half checkpoint.
"""

from __future__ import annotations

__all__ = [
    "ACQUIRE_SCRIPT",
    "MIGRATE_SCRIPT",
    "DELETE_CHECKPOINTS_SCRIPT",
    "DELETE_THREAD_SCRIPT",
    "DUMP_SCRIPT",
    "HISTORY_SCRIPT",
    "PRUNE_SCRIPT",
    "PUT_SCRIPT",
    "PUT_WRITES_SCRIPT",
    "READ_SCRIPT",
    "RELEASE_SCRIPT",
    "RESTORE_SCRIPT",
]

_COMMON = r"""
local REF_LEN = 24
local DATA = 8
local KIND = {'cp', 'refs', 'idx', 'blobs', 'msgs', 'w', 'wi', 'ns'}

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- one absolute expiry instant for every data key (they never expire one by one), the
-- marker `notice` seconds later; ttl 0 = no expiry
local function touch(ttl, notice)
  if ttl > 0 then
    local at = now_ms() + ttl * 1000
    for i = 1, 9 do redis.call('PEXPIREAT', KEYS[i], at) end
    redis.call('PEXPIREAT', KEYS[10], at + notice * 1000)
  else
    redis.call('PERSIST', KEYS[9])
    redis.call('PERSIST', KEYS[10])
  end
end
local function mark_live(ttl, notice)
  if notice > 0 and redis.call('HGET', KEYS[10], 's') ~= '1' then
    redis.call('HSET', KEYS[10], 's', '1')
  end
  touch(ttl, notice)
end
-- '' (intact), 'absent' (no data key at all) or the name of a lost key; the manifest read
-- is kept in `manifest` for save_manifest
local manifest = false
local function check_thread()
  manifest = redis.call('HGET', KEYS[9], '\1k')
  if manifest then
    local want = {}
    for i = 1, DATA do
      if string.sub(manifest, i, i) == '1' then want[#want + 1] = KEYS[i] end
    end
    if #want == 0 or redis.call('EXISTS', unpack(want)) == #want then return '' end
    for i = 1, DATA do
      if string.sub(manifest, i, i) == '1' and redis.call('EXISTS', KEYS[i]) == 0 then
        return KIND[i] .. ' key'
      end
    end
    return ''
  end
  if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7],
                KEYS[8]) > 0 then
    return 'head key'
  end
  return 'absent'
end
-- record which data keys exist; `known` ("1"/"0"/"?" per key) skips the EXISTS of the keys
-- the caller knows about (a put knows it wrote cp, refs, idx, ns)
local function save_manifest_full()
  manifest = false
  local s = {}
  for i = 1, DATA do s[i] = tostring(redis.call('EXISTS', KEYS[i])) end
  redis.call('HSET', KEYS[9], '\1k', table.concat(s))
end
local function save_manifest(known)
  local s = {}
  for i = 1, DATA do
    local k = known and string.sub(known, i, i) or '?'
    if k == '?' then
      if manifest and string.sub(manifest, i, i) == '1' then
        k = '1'  -- checked by check_thread, and this script deleted nothing
      else
        k = tostring(redis.call('EXISTS', KEYS[i]))
      end
    end
    s[i] = k
  end
  local new = table.concat(s)
  if new ~= manifest then redis.call('HSET', KEYS[9], '\1k', new) end
  manifest = new
end
local function split_refs(s, out)
  for i = 1, #s, REF_LEN do out[#out + 1] = string.sub(s, i, i + REF_LEN - 1) end
end
-- refs held by a typed blob value (R or D), appended to out
local function blob_refs(v, out)
  local t = string.sub(v, 1, 2)
  if t == 'R\0' or t == 'S\0' then
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
local function write_channel(v)
  local p = string.find(v, '\0', 1, true)
  local q = string.find(v, '\0', p + 1, true)
  return string.sub(v, p + 1, q - 1)
end
local function write_refs(v, out)
  if string.sub(v, 1, 2) == 'R\0' then split_refs(write_payload(v), out) end
end
-- a refs value: parent id, then the "channel\0version" entries
local function parse_refs(v)
  local p = string.find(v, '\2', 1, true)
  if not p then return '', v end
  return string.sub(v, 1, p - 1), string.sub(v, p + 1)
end
-- HSET key with the field/value pairs t[first..last] (variadic, in bounded chunks)
local function hset_range(key, t, first, last)
  for start = first, last, 1000 do
    redis.call('HSET', key, unpack(t, start, math.min(start + 999, last)))
  end
end
local function members(ns)
  return redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ns .. '\0', '(' .. ns .. '\1')
end
local function remove_cp(f, cand)
  local _, entries = parse_refs(redis.call('HGET', KEYS[2], f) or '')
  local p = string.find(f, '\0', 1, true)
  local ns = string.sub(f, 1, p - 1)
  for entry in string.gmatch(entries, '([^\1]+)') do cand[ns .. '\0' .. entry] = true end
  redis.call('HDEL', KEYS[1], f)
  redis.call('HDEL', KEYS[2], f)
  redis.call('ZREM', KEYS[3], f)
  local wf = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. f .. '\0', '(' .. f .. '\1')
  if #wf > 0 then
    redis.call('HDEL', KEYS[6], unpack(wf))
    redis.call('ZREM', KEYS[7], unpack(wf))
  end
end
-- the head of ns after its head checkpoint was removed: the newest remaining by id
local function reset_head(ns)
  local head = redis.call('HGET', KEYS[9], ns)
  if head and redis.call('HEXISTS', KEYS[1], ns .. '\0' .. head) == 1 then return end
  local r = redis.call('ZREVRANGEBYLEX', KEYS[3], '(' .. ns .. '\1', '[' .. ns .. '\0',
                       'LIMIT', 0, 1)
  if #r == 0 then
    redis.call('HDEL', KEYS[9], ns)
  else
    redis.call('HSET', KEYS[9], ns, string.sub(r[1], #ns + 2))
  end
end
local function collect_garbage(cand)
  -- blobs no remaining checkpoint references
  local live = {}
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    local p = string.find(all[i], '\0', 1, true)
    local ns = string.sub(all[i], 1, p - 1)
    local _, entries = parse_refs(all[i + 1])
    for entry in string.gmatch(entries, '([^\1]+)') do live[ns .. '\0' .. entry] = true end
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
    if #members(ns) == 0 then
      redis.call('ZREM', KEYS[8], ns)
      redis.call('HDEL', KEYS[9], ns)
    else
      reset_head(ns)
    end
  end
end
-- resolve a D chain into one R value; nil, piece when a base is missing
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
      return nil, 'blob ' .. channel .. ' version ' .. base .. ' (base of a later version)'
    end
  end
  local parts = {string.sub(cur, 3)}
  for i = #chunks, 1, -1 do parts[#parts + 1] = chunks[i] end
  return 'R\0' .. table.concat(parts)
end

-- delete the thread's data, leaving a "deleted" tombstone with the fencing counter (so a
-- late writer of a turn from before stays fenced out) for `notice` seconds
local function wipe(notice)
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8],
             KEYS[9])
  if notice > 0 then
    redis.call('HSET', KEYS[10], 's', '0')
    redis.call('EXPIRE', KEYS[10], notice)
  else
    redis.call('DEL', KEYS[10])
  end
end
-- '' or 'F' when a fenced write's token is not the thread's current one (a late writer
-- of a turn that lost the thread)
local function fenced_out(fence)
  if fence == '' then return false end
  return redis.call('HGET', KEYS[10], 'f') ~= fence
end
"""

READ_SCRIPT = (
    _COMMON
    + r"""
-- refs the client holds decoded (ARGV[3], concatenated) are not sent back; the others are
-- collected once each in uniq
local held = ARGV[3]
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

-- {id, record, entries, values, write fields, write values} | false, or nil, lost piece
local function load_one(ns, id)
  local latest = id == ''
  if latest then
    id = redis.call('HGET', KEYS[9], ns)
    if not id then
      if redis.call('ZSCORE', KEYS[8], ns) then return nil, 'head of namespace ' .. ns end
      return false
    end
  end
  local f = ns .. '\0' .. id
  local rec = redis.call('HGET', KEYS[1], f)
  if not rec then
    if latest then return nil, 'checkpoint ' .. id .. ' (the head)' end
    return false
  end
  local raw_refs = redis.call('HGET', KEYS[2], f)
  if not raw_refs then return nil, 'channel list of checkpoint ' .. id end
  local _, refs = parse_refs(raw_refs)
  local vals = {}
  if refs ~= '' then
    local fields, chans, entries = {}, {}, {}
    for entry in string.gmatch(refs, '([^\1]+)') do
      local p = string.find(entry, '\0', 1, true)
      chans[#chans + 1] = string.sub(entry, 1, p - 1)
      entries[#entries + 1] = entry
      fields[#fields + 1] = ns .. '\0' .. entry
    end
    local raw = redis.call('HMGET', KEYS[4], unpack(fields))
    for i = 1, #fields do
      local v = raw[i]
      if not v then
        local p = string.find(entries[i], '\0', 1, true)
        return nil, 'blob ' .. chans[i] .. ' version ' .. string.sub(entries[i], p + 1)
          .. ' of checkpoint ' .. id
      end
      local piece
      v, piece = resolve(ns, chans[i], v)
      if not v then return nil, piece end
      local t = string.sub(v, 1, 2)
      if t == 'R\0' or t == 'S\0' then want_refs(string.sub(v, 3)) end
      vals[i] = v
    end
  end
  local wf = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. f .. '\0', '(' .. f .. '\1')
  local wv = {}
  if #wf > 0 then
    wv = redis.call('HMGET', KEYS[6], unpack(wf))
    for i = 1, #wf do
      local v = wv[i]
      if not v then return nil, 'pending write ' .. wf[i] end
      if string.sub(v, 1, 2) == 'R\0' then want_refs(write_payload(v)) end
    end
  end
  return {id, rec, refs, vals, wf, wv}
end

local state = check_thread()
if state == 'absent' then return {'A' .. (redis.call('HGET', KEYS[10], 's') or '')} end
if state ~= '' then return {'C' .. state} end
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local results = {}
local found = false
for i = 4, #ARGV, 2 do
  local r, piece = load_one(ARGV[i], ARGV[i + 1])
  if r == nil then return {'C' .. piece} end
  results[#results + 1] = r
  if r then found = true end
end
local mv = {}
for start = 1, #uniq, 1000 do
  local part = redis.call('HMGET', KEYS[5], unpack(uniq, start, math.min(start + 999, #uniq)))
  for j = 1, #part do mv[#mv + 1] = part[j] end
end
if found and ttl > 0 then touch(ttl, notice) end
return {'', results, table.concat(uniq), mv}
"""
)

PUT_SCRIPT = (
    _COMMON
    + r"""
-- keep the head and the newest keep - 1 others (by id) of ns
local function trim(ns, keep)
  local cand = {}
  local removed = 0
  local head = redis.call('HGET', KEYS[9], ns)
  local m = members(ns)
  local extra = #m - keep
  for i = 1, #m do
    if extra <= 0 then break end
    if string.sub(m[i], #ns + 2) ~= head then
      remove_cp(m[i], cand); removed = removed + 1; extra = extra - 1
    end
  end
  if ns == '' then
    local kept = members('')
    local cutoff = string.sub(kept[1], 2)
    for _, other in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
      if other ~= '' then
        local oh = redis.call('HGET', KEYS[9], other)
        for _, f in ipairs(members(other)) do
          local oid = string.sub(f, #other + 2)
          if oid < cutoff and oid ~= oh then remove_cp(f, cand); removed = removed + 1 end
        end
      end
    end
  end
  if removed > 0 then collect_garbage(cand) end
  return removed
end

local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local keep_last = tonumber(ARGV[3])
local fence = ARGV[4]
local ns, id, rec, refs = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
local nblobs, nmsgs, nknown, nbases = tonumber(ARGV[9]), tonumber(ARGV[10]),
  tonumber(ARGV[11]), tonumber(ARGV[12])
local state = check_thread()
if state ~= '' and state ~= 'absent' then return 'C' .. state end
if fenced_out(fence) then return 'F' end
local i = 13
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
-- the checkpoint names only the blobs that exist (a version LangGraph never stored is
-- absent, not lost)
local parent, entries = parse_refs(refs)
if entries ~= '' then
  local written = {}
  for j = 1, #blob_args, 2 do written[blob_args[j]] = true end
  local kept, dropped = {}, false
  for entry in string.gmatch(entries, '([^\1]+)') do
    local field = ns .. '\0' .. entry
    if written[field] or redis.call('HEXISTS', KEYS[4], field) == 1 then
      kept[#kept + 1] = entry
    else
      dropped = true
    end
  end
  if dropped then entries = table.concat(kept, '\1') end
end
local f = ns .. '\0' .. id
if not redis.call('ZSCORE', KEYS[8], ns) then
  redis.call('ZADD', KEYS[8], redis.call('ZCARD', KEYS[8]), ns)
end
redis.call('HSET', KEYS[2], f, parent .. '\2' .. entries)
redis.call('HSET', KEYS[1], f, rec)
redis.call('ZADD', KEYS[3], 0, f)
redis.call('HSET', KEYS[9], ns, id)
if keep_last > 0 and trim(ns, keep_last) > 0 then
  save_manifest_full()
else
  save_manifest('111' .. (nblobs > 0 and '1' or '?') .. (nmsgs > 0 and '1' or '?') .. '??1')
end
mark_live(ttl, notice)
return 1
"""
)

PUT_WRITES_SCRIPT = (
    _COMMON
    + r"""
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local fence = ARGV[3]
local nwrites, nmsgs, nknown = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = check_thread()
if state ~= '' and state ~= 'absent' then return 'C' .. state end
if fenced_out(fence) then return 'F' end
local i = 7 + 3 * nwrites + 2 * nmsgs
for _ = 1, nknown do
  if redis.call('HEXISTS', KEYS[5], ARGV[i]) == 0 then return 0 end
  i = i + 1
end
local m = 7 + 3 * nwrites
hset_range(KEYS[5], ARGV, m, m + 2 * nmsgs - 1)
for j = 7, 7 + 3 * nwrites - 1, 3 do
  local field, value = ARGV[j + 1], ARGV[j + 2]
  if ARGV[j] == '1' then
    redis.call('HSET', KEYS[6], field, value)
    redis.call('ZADD', KEYS[7], 0, field)
  elseif redis.call('HSETNX', KEYS[6], field, value) == 1 then
    redis.call('ZADD', KEYS[7], 0, field)
  end
end
local wrote = nwrites > 0 and '1' or '?'
save_manifest('????' .. (nmsgs > 0 and '1' or '?') .. wrote .. wrote .. '?')
mark_live(ttl, notice)
return 1
"""
)

DELETE_THREAD_SCRIPT = (
    _COMMON
    + r"""
-- ARGV: notice seconds (0: no tombstone)
local notice = tonumber(ARGV[1])
wipe(notice)
return 1
"""
)

DELETE_CHECKPOINTS_SCRIPT = (
    _COMMON
    + r"""
-- ARGV: ttl, notice, then "ns\0id" fields to delete. Heads move to the newest remaining
-- checkpoint; a thread left without checkpoints is deleted like delete_thread.
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = check_thread()
if state == 'absent' then return 1 end
if state ~= '' then return 'C' .. state end
local cand = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', KEYS[1], ARGV[i]) == 1 then remove_cp(ARGV[i], cand) end
end
collect_garbage(cand)
if redis.call('HLEN', KEYS[1]) == 0 then
  wipe(notice)
  return 1
end
save_manifest_full()
touch(ttl, notice)
return 1
"""
)

PRUNE_SCRIPT = (
    _COMMON
    + r"""
-- keep_latest: each namespace keeps only its head checkpoint (with its writes)
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = check_thread()
if state == 'absent' then return 1 end
if state ~= '' then return 'C' .. state end
local cand = {}
for _, ns in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  local head = redis.call('HGET', KEYS[9], ns)
  for _, f in ipairs(members(ns)) do
    if string.sub(f, #ns + 2) ~= head then remove_cp(f, cand) end
  end
end
collect_garbage(cand)
save_manifest_full()
touch(ttl, notice)
return 1
"""
)

DUMP_SCRIPT = (
    _COMMON
    + r"""
-- a consistent snapshot of the thread's data keys (DUMP payloads, false where absent)
local state = check_thread()
if state == 'absent' then return {'A'} end
if state ~= '' then return {'C' .. state} end
local out = {''}
for i = 1, 9 do out[#out + 1] = redis.call('DUMP', KEYS[i]) or false end
return out
"""
)

RESTORE_SCRIPT = (
    _COMMON
    + r"""
-- ARGV: ttl, notice, then 9 DUMP payloads ('' where absent): the thread becomes a copy
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9])
for i = 1, 9 do
  if ARGV[i + 2] ~= '' then redis.call('RESTORE', KEYS[i], 0, ARGV[i + 2]) end
end
save_manifest_full()
mark_live(ttl, notice)
return 1
"""
)

HISTORY_SCRIPT = (
    _COMMON
    + r"""
-- ARGV: ns, target id ('' = head), then channel names. Walks the parent chain from the
-- target's parent: per ancestor, its writes to the channels still wanted and the blobs of
-- those channels it stores (a stored blob ends that channel's walk).
-- Returns {status, target id, {{id, write fields, write values, channels, blobs}...}, refs,
-- message values}.
local ns, id = ARGV[1], ARGV[2]
local state = check_thread()
if state == 'absent' then return {'A' .. (redis.call('HGET', KEYS[10], 's') or '')} end
if state ~= '' then return {'C' .. state} end
if id == '' then
  id = redis.call('HGET', KEYS[9], ns)
  if not id then return {'', false, {}, '', {}} end
end
local remaining, left = {}, 0
for i = 3, #ARGV do remaining[ARGV[i]] = true; left = left + 1 end
local raw = redis.call('HGET', KEYS[2], ns .. '\0' .. id)
if not raw then
  if redis.call('HEXISTS', KEYS[1], ns .. '\0' .. id) == 1 then
    return {'Cchannel list of checkpoint ' .. id}
  end
  return {'', false, {}, '', {}}
end
local seen, uniq = {}, {}
local function want(s)
  for i = 1, #s, REF_LEN do
    local r = string.sub(s, i, i + REF_LEN - 1)
    if not seen[r] then seen[r] = true; uniq[#uniq + 1] = r end
  end
end
local steps = {}
local cursor = parse_refs(raw)
local hops = 0
while cursor ~= '' and left > 0 do
  hops = hops + 1
  if hops > 100000 then return {'Cparent chain of checkpoint ' .. id .. ' (a cycle)'} end
  local f = ns .. '\0' .. cursor
  local r = redis.call('HGET', KEYS[2], f)
  if not r then
    if redis.call('HEXISTS', KEYS[1], f) == 1 then
      return {'Cchannel list of checkpoint ' .. cursor}
    end
    break
  end
  local parent, entries = parse_refs(r)
  local wf = redis.call('ZRANGEBYLEX', KEYS[7], '[' .. f .. '\0', '(' .. f .. '\1')
  local sel_f, sel_v = {}, {}
  if #wf > 0 then
    local wv = redis.call('HMGET', KEYS[6], unpack(wf))
    for i = 1, #wf do
      local v = wv[i]
      if not v then return {'Cpending write ' .. wf[i]} end
      if remaining[write_channel(v)] then
        sel_f[#sel_f + 1] = wf[i]
        sel_v[#sel_v + 1] = v
        if string.sub(v, 1, 2) == 'R\0' then want(write_payload(v)) end
      end
    end
  end
  local chans, blobs = {}, {}
  for entry in string.gmatch(entries, '([^\1]+)') do
    local p = string.find(entry, '\0', 1, true)
    local ch = string.sub(entry, 1, p - 1)
    if remaining[ch] then
      local v = redis.call('HGET', KEYS[4], ns .. '\0' .. entry)
      if not v then
        return {'Cblob ' .. ch .. ' version ' .. string.sub(entry, p + 1) ..
                ' of checkpoint ' .. cursor}
      end
      if string.sub(v, 1, 7) ~= 'empty\0' then
        local piece
        v, piece = resolve(ns, ch, v)
        if not v then return {'C' .. piece} end
        local t = string.sub(v, 1, 2)
        if t == 'R\0' or t == 'S\0' then want(string.sub(v, 3)) end
        chans[#chans + 1] = ch
        blobs[#blobs + 1] = v
        remaining[ch] = nil
        left = left - 1
      end
    end
  end
  steps[#steps + 1] = {cursor, sel_f, sel_v, chans, blobs}
  cursor = parent
end
local mv = {}
for start = 1, #uniq, 1000 do
  local part = redis.call('HMGET', KEYS[5], unpack(uniq, start, math.min(start + 999, #uniq)))
  for j = 1, #part do mv[#mv + 1] = part[j] end
end
return {'', id, steps, table.concat(uniq), mv}
"""
)

MIGRATE_SCRIPT = (
    _COMMON
    + r"""
-- schema 1 -> 2 for one thread. ARGV: notice, then "ns\0id", parent id pairs. Adds the
-- parent to each refs value (keeping only entries whose blob exists), sets each namespace's
-- head to its largest id (schema 1's "latest"), writes the manifest and the tombstone, and
-- gives every key one expiry instant. Idempotent.
local notice = tonumber(ARGV[1])
if redis.call('HEXISTS', KEYS[9], '\1k') == 1 then return 0 end
for i = 2, #ARGV, 2 do
  local f, parent = ARGV[i], ARGV[i + 1]
  local v = redis.call('HGET', KEYS[2], f)
  if v and not string.find(v, '\2', 1, true) then
    local p = string.find(f, '\0', 1, true)
    local ns = string.sub(f, 1, p - 1)
    local kept = {}
    for entry in string.gmatch(v, '([^\1]+)') do
      if redis.call('HEXISTS', KEYS[4], ns .. '\0' .. entry) == 1 then kept[#kept + 1] = entry end
    end
    redis.call('HSET', KEYS[2], f, parent .. '\2' .. table.concat(kept, '\1'))
  end
end
for _, ns in ipairs(redis.call('ZRANGE', KEYS[8], 0, -1)) do
  local r = redis.call('ZREVRANGEBYLEX', KEYS[3], '(' .. ns .. '\1', '[' .. ns .. '\0',
                       'LIMIT', 0, 1)
  if #r > 0 then redis.call('HSET', KEYS[9], ns, string.sub(r[1], #ns + 2)) end
end
local pttl = redis.call('PTTL', KEYS[1])
save_manifest_full()
if notice > 0 then redis.call('HSET', KEYS[10], 's', '1') end
if pttl > 0 then
  local at = now_ms() + pttl
  for i = 1, 9 do redis.call('PEXPIREAT', KEYS[i], at) end
  if notice > 0 then redis.call('PEXPIREAT', KEYS[10], at + notice * 1000) end
end
return 1
"""
)

# The turn lock (see ``streamagent.memory.turns``): KEYS = the thread's keys.
ACQUIRE_SCRIPT = r"""
-- ARGV: lock ms, expiry ms of a new tombstone key (0: none). Returns {token, 0} when
-- acquired, {holder token, its pttl} when busy. The token comes from the thread's fencing
-- counter (in its tombstone key, which outlives the data).
local holder = redis.call('GET', KEYS[11])
if holder then return {holder, redis.call('PTTL', KEYS[11])} end
local existed = redis.call('EXISTS', KEYS[10])
local token = tostring(redis.call('HINCRBY', KEYS[10], 'f', 1))
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[10], ARGV[2]) end
redis.call('SET', KEYS[11], token, 'PX', tonumber(ARGV[1]))
return {token, 0}
"""

RELEASE_SCRIPT = r"""
-- ARGV: token, lock ms (0 = release). 1 when the token still holds the thread.
if redis.call('GET', KEYS[11]) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[11], tonumber(ARGV[2]))
else
  redis.call('DEL', KEYS[11])
end
return 1
"""
