-- needs:
-- D values: a chain of appends resolved into one R value.
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
    cur = redis.call('HGET', BLOBS, ns .. '\0' .. channel .. '\0' .. base)
    hops = hops + 1
    if (not cur) or hops > 10000 then
      return nil, 'blob ' .. channel .. ' version ' .. base .. ' (base of a later version)'
    end
  end
  local parts = {string.sub(cur, 3)}
  for i = #chunks, 1, -1 do parts[#parts + 1] = chunks[i] end
  return 'R\0' .. table.concat(parts)
end
