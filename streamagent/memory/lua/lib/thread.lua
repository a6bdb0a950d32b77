-- needs:
-- Integrity of one thread: the manifest of its data keys, one expiry instant for all of them,
-- the tombstone (SEEN) and the fencing counter.
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
    redis.call('PEXPIREAT', SEEN, at + notice * 1000)
  else
    redis.call('PERSIST', HEAD)
    redis.call('PERSIST', SEEN)
  end
end
local function mark_live(ttl, notice)
  if notice > 0 and redis.call('HGET', SEEN, 's') ~= '1' then
    redis.call('HSET', SEEN, 's', '1')
  end
  touch(ttl, notice)
end
-- the verdict on a thread with no data key: 'A' .. its tombstone's flag ('1' live: the data
-- expired; '0' deleted; '' none), or 'AL' when the tombstone says live and has no expiry
-- itself (its thread was written without a TTL, so its data cannot have expired: it was
-- lost - evicted, flushed, deleted by hand)
local function absent_verdict()
  local live = redis.call('HGET', SEEN, 's')
  if live == '1' and redis.call('PTTL', SEEN) == -1 then return 'AL' end
  return 'A' .. (live or '')
end
-- '' (intact), 'absent' (no data key at all) or the name of a lost key; the manifest read
-- is kept in `manifest` for save_manifest
local manifest = false
-- the manifest of a thread whose eight data keys all exist (the usual one)
local ALL = '11111111'
local function check_thread()
  manifest = redis.call('HGET', HEAD, '\1k')
  if manifest == ALL
      and redis.call('EXISTS', CP, REFS, IDX, BLOBS, MSGS, W, WI, NS) == DATA then
    return ''
  end
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
  if redis.call('EXISTS', CP, REFS, IDX, BLOBS, MSGS, W, WI, NS) > 0 then
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
  redis.call('HSET', HEAD, '\1k', table.concat(s))
end
local function save_manifest(known)
  -- every key exists and `known` claims none is gone: the manifest stays as it is
  if manifest == ALL and not (known and string.find(known, '0', 1, true)) then return end
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
  if new ~= manifest then redis.call('HSET', HEAD, '\1k', new) end
  manifest = new
end
-- delete the thread's data, leaving a "deleted" tombstone with the fencing counter (so a
-- late writer of a turn from before stays fenced out) for `notice` seconds
local function wipe(notice)
  redis.call('DEL', CP, REFS, IDX, BLOBS, MSGS, W, WI, NS, HEAD)
  if notice > 0 then
    redis.call('HSET', SEEN, 's', '0')
    redis.call('EXPIRE', SEEN, notice)
  else
    redis.call('DEL', SEEN)
  end
end
-- '' or 'F' when a fenced write's token is not the thread's current one (a late writer
-- of a turn that lost the thread)
local function fenced_out(fence)
  if fence == '' then return false end
  return redis.call('HGET', SEEN, 'f') ~= fence
end
