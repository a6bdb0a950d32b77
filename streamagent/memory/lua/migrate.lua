-- needs: thread
-- schema 1 -> 2 for one thread. ARGV: notice, then "ns\0id", parent id pairs. Adds the
-- parent to each refs value (keeping only entries whose blob exists), sets each namespace's
-- head to its largest id (schema 1's "latest"), writes the manifest and the tombstone, and
-- gives every key one expiry instant. Idempotent.
local notice = tonumber(ARGV[1])
if redis.call('HEXISTS', HEAD, '\1k') == 1 then return 0 end
for i = 2, #ARGV, 2 do
  local f, parent = ARGV[i], ARGV[i + 1]
  local v = redis.call('HGET', REFS, f)
  if v and not string.find(v, '\2', 1, true) then
    local p = string.find(f, '\0', 1, true)
    local ns = string.sub(f, 1, p - 1)
    local kept = {}
    for entry in string.gmatch(v, '([^\1]+)') do
      if redis.call('HEXISTS', BLOBS, ns .. '\0' .. entry) == 1 then kept[#kept + 1] = entry end
    end
    redis.call('HSET', REFS, f, parent .. '\2' .. table.concat(kept, '\1'))
  end
end
for _, ns in ipairs(redis.call('ZRANGE', NS, 0, -1)) do
  local r = redis.call('ZREVRANGEBYLEX', IDX, '(' .. ns .. '\1', '[' .. ns .. '\0',
                       'LIMIT', 0, 1)
  if #r > 0 then redis.call('HSET', HEAD, ns, string.sub(r[1], #ns + 2)) end
end
local pttl = redis.call('PTTL', CP)
save_manifest_full()
if notice > 0 then redis.call('HSET', SEEN, 's', '1') end
if pttl > 0 then
  local at = now_ms() + pttl
  for i = 1, 9 do redis.call('PEXPIREAT', KEYS[i], at) end
  if notice > 0 then redis.call('PEXPIREAT', SEEN, at + notice * 1000) end
end
return 1
