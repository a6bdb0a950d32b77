-- needs:
-- The stored encodings: message refs in blob and write values, refs values (parent id and
-- channel versions), and variadic HSET in bounded chunks.
local REF_LEN = 24
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
