-- needs: refs
-- Removing checkpoints: their writes, the blobs and messages nothing references any more, and
-- the heads and namespaces left behind.
local function members(ns)
  return redis.call('ZRANGEBYLEX', IDX, '[' .. ns .. '\0', '(' .. ns .. '\1')
end
local function remove_cp(f, cand)
  local _, entries = parse_refs(redis.call('HGET', REFS, f) or '')
  local p = string.find(f, '\0', 1, true)
  local ns = string.sub(f, 1, p - 1)
  for entry in string.gmatch(entries, '([^\1]+)') do cand[ns .. '\0' .. entry] = true end
  redis.call('HDEL', CP, f)
  redis.call('HDEL', REFS, f)
  redis.call('ZREM', IDX, f)
  local wf = redis.call('ZRANGEBYLEX', WI, '[' .. f .. '\0', '(' .. f .. '\1')
  if #wf > 0 then
    redis.call('HDEL', W, unpack(wf))
    redis.call('ZREM', WI, unpack(wf))
  end
end
-- the head of ns after its head checkpoint was removed: the newest remaining by id
local function reset_head(ns)
  local head = redis.call('HGET', HEAD, ns)
  if head and redis.call('HEXISTS', CP, ns .. '\0' .. head) == 1 then return end
  local r = redis.call('ZREVRANGEBYLEX', IDX, '(' .. ns .. '\1', '[' .. ns .. '\0',
                       'LIMIT', 0, 1)
  if #r == 0 then
    redis.call('HDEL', HEAD, ns)
  else
    redis.call('HSET', HEAD, ns, string.sub(r[1], #ns + 2))
  end
end
local function collect_garbage(cand)
  -- blobs no remaining checkpoint references
  local live = {}
  local all = redis.call('HGETALL', REFS)
  for i = 1, #all, 2 do
    local p = string.find(all[i], '\0', 1, true)
    local ns = string.sub(all[i], 1, p - 1)
    local _, entries = parse_refs(all[i + 1])
    for entry in string.gmatch(entries, '([^\1]+)') do live[ns .. '\0' .. entry] = true end
  end
  for field, _ in pairs(cand) do
    if not live[field] then redis.call('HDEL', BLOBS, field) end
  end
  -- messages no remaining blob or write references
  local refs = {}
  for _, v in ipairs(redis.call('HVALS', BLOBS)) do blob_refs(v, refs) end
  for _, v in ipairs(redis.call('HVALS', W)) do write_refs(v, refs) end
  local keep = {}
  for _, r in ipairs(refs) do keep[r] = true end
  for _, r in ipairs(redis.call('HKEYS', MSGS)) do
    if not keep[r] then redis.call('HDEL', MSGS, r) end
  end
  -- namespaces left without checkpoints
  for _, ns in ipairs(redis.call('ZRANGE', NS, 0, -1)) do
    if #members(ns) == 0 then
      redis.call('ZREM', NS, ns)
      redis.call('HDEL', HEAD, ns)
    else
      reset_head(ns)
    end
  end
end
