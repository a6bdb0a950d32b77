-- needs: thread refs resolve reply
-- ARGV: ns, target id ('' = head), then channel names. Walks the parent chain from the
-- target's parent: per ancestor, its writes to the channels still wanted and the blobs of
-- those channels it stores (a stored blob ends that channel's walk).
-- Returns {status, target id, {{id, write fields, write values, channels, blobs}...}, refs,
-- message values}.
local ns, id = ARGV[1], ARGV[2]
local state = check_thread()
if state == 'absent' then return {absent_verdict()} end
if state ~= '' then return {'C' .. state} end
if id == '' then
  id = redis.call('HGET', HEAD, ns)
  if not id then return {'', false, {}, '', {}} end
end
local remaining, left = {}, 0
for i = 3, #ARGV do remaining[ARGV[i]] = true; left = left + 1 end
local raw = redis.call('HGET', REFS, ns .. '\0' .. id)
if not raw then
  if redis.call('HEXISTS', CP, ns .. '\0' .. id) == 1 then
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
  local r = redis.call('HGET', REFS, f)
  if not r then
    if redis.call('HEXISTS', CP, f) == 1 then
      return {'Cchannel list of checkpoint ' .. cursor}
    end
    break
  end
  local parent, entries = parse_refs(r)
  local wf = redis.call('ZRANGEBYLEX', WI, '[' .. f .. '\0', '(' .. f .. '\1')
  local sel_f, sel_v = {}, {}
  if #wf > 0 then
    local wv = redis.call('HMGET', W, unpack(wf))
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
      local v = redis.call('HGET', BLOBS, ns .. '\0' .. entry)
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
local mv = message_values(uniq)
return {'', id, steps, table.concat(uniq), mv}
