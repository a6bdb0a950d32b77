-- needs:
-- Replies of the read scripts: the values of message refs (HMGET in bounded chunks), and an
-- array of strings packed into one string (a reply of many small strings is far cheaper to
-- send and to parse as one).
-- the stored values of the message refs `refs` (HMGET in bounded chunks; false where absent)
local function message_values(refs)
  local out = {}
  for start = 1, #refs, 1000 do
    local part = redis.call('HMGET', MSGS, unpack(refs, start, math.min(start + 999, #refs)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
-- append the values of the array t to the array out
local function append(out, t)
  local n = #out
  for i = 1, #t do out[n + i] = t[i] end
end
-- the array t (strings, or false) as one string: its length, each string's length (-1 for
-- false; 4-byte big-endian integers), then the strings (see _decode.py: unpack_strings).
-- Consumes t (its false entries become '').
local function pack_strings(t)
  local n = #t
  local lengths = {}
  for i = 1, n do
    local v = t[i]
    if v then
      lengths[i] = #v
    else
      lengths[i] = -1
      t[i] = ''
    end
  end
  local head = struct.pack('>I4', n)
  for start = 1, n, 1000 do
    local stop = math.min(start + 999, n)
    head = head .. struct.pack('>' .. string.rep('i4', stop - start + 1),
                               unpack(lengths, start, stop))
  end
  return head .. table.concat(t)
end
