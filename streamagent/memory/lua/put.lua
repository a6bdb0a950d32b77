-- needs: thread refs gc
-- One checkpoint, atomically. ARGV: ttl, notice, keep_last, fence, ns, id, record, refs value,
-- then the counts of blobs, messages, known refs and bases, then (suffix, value) blob pairs,
-- (ref, value) message pairs, the known refs (checked: HEXISTS) and the bases (blobs that must
-- still exist). Returns 1 (stored), 0 (a shortcut failed: send everything), 'F' (fenced out)
-- or 'C<piece>' (a damaged thread; nothing written).
-- keep the head and the newest keep - 1 others (by id) of ns
local function trim(ns, keep)
  local cand = {}
  local removed = 0
  local head = redis.call('HGET', HEAD, ns)
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
    for _, other in ipairs(redis.call('ZRANGE', NS, 0, -1)) do
      if other ~= '' then
        local oh = redis.call('HGET', HEAD, other)
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
  if redis.call('HEXISTS', MSGS, ARGV[i]) == 0 then return 0 end
  i = i + 1
end
for _ = 1, nbases do
  if redis.call('HEXISTS', BLOBS, ns .. '\0' .. ARGV[i]) == 0 then return 0 end
  i = i + 1
end
hset_range(MSGS, ARGV, msg_start, msg_start + 2 * nmsgs - 1)
hset_range(BLOBS, blob_args, 1, #blob_args)
-- the checkpoint names only the blobs that exist (a version LangGraph never stored is
-- absent, not lost)
local parent, entries = parse_refs(refs)
if entries ~= '' then
  local written = {}
  for j = 1, #blob_args, 2 do written[blob_args[j]] = true end
  local kept, dropped = {}, false
  for entry in string.gmatch(entries, '([^\1]+)') do
    local field = ns .. '\0' .. entry
    if written[field] or redis.call('HEXISTS', BLOBS, field) == 1 then
      kept[#kept + 1] = entry
    else
      dropped = true
    end
  end
  if dropped then entries = table.concat(kept, '\1') end
end
local f = ns .. '\0' .. id
if not redis.call('ZSCORE', NS, ns) then
  redis.call('ZADD', NS, redis.call('ZCARD', NS), ns)
end
redis.call('HSET', REFS, f, parent .. '\2' .. entries)
redis.call('HSET', CP, f, rec)
redis.call('ZADD', IDX, 0, f)
redis.call('HSET', HEAD, ns, id)
if keep_last > 0 and trim(ns, keep_last) > 0 then
  save_manifest_full()
else
  save_manifest('111' .. (nblobs > 0 and '1' or '?') .. (nmsgs > 0 and '1' or '?') .. '??1')
end
mark_live(ttl, notice)
return 1
