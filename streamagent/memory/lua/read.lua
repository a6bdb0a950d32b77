-- needs: thread refs resolve reply
-- Checkpoints of one thread. ARGV: ttl (renewed when > 0), notice, the refs the client holds
-- decoded, then (ns, id or '' for the head) pairs. Returns one string (pack_strings: a reply
-- of many small strings is far cheaper to send and to parse as one) holding the status
-- ('A<tombstone>': no data, 'C<piece>': damaged, '': read), then per pair '0' (no such
-- checkpoint) or '1', id, record, channel entries, the number of blobs, the blobs, the
-- number of writes, their fields, their values; then the refs of the messages sent back
-- (concatenated) and their values.
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
    id = redis.call('HGET', HEAD, ns)
    if not id then
      if redis.call('ZSCORE', NS, ns) then return nil, 'head of namespace ' .. ns end
      return false
    end
  end
  local f = ns .. '\0' .. id
  local rec = redis.call('HGET', CP, f)
  if not rec then
    if latest then return nil, 'checkpoint ' .. id .. ' (the head)' end
    return false
  end
  local raw_refs = redis.call('HGET', REFS, f)
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
    local raw = redis.call('HMGET', BLOBS, unpack(fields))
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
  local wf = redis.call('ZRANGEBYLEX', WI, '[' .. f .. '\0', '(' .. f .. '\1')
  local wv = {}
  if #wf > 0 then
    wv = redis.call('HMGET', W, unpack(wf))
    for i = 1, #wf do
      local v = wv[i]
      if not v then return nil, 'pending write ' .. wf[i] end
      if string.sub(v, 1, 2) == 'R\0' then want_refs(write_payload(v)) end
    end
  end
  return {id, rec, refs, vals, wf, wv}
end

local state = check_thread()
if state == 'absent' then
  return pack_strings({absent_verdict()})
end
if state ~= '' then return pack_strings({'C' .. state}) end
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {''}
local found = false
for i = 4, #ARGV, 2 do
  local r, piece = load_one(ARGV[i], ARGV[i + 1])
  if r == nil then return pack_strings({'C' .. piece}) end
  if r then
    found = true
    out[#out + 1] = '1'
    out[#out + 1] = r[1]
    out[#out + 1] = r[2]
    out[#out + 1] = r[3]
    out[#out + 1] = tostring(#r[4])
    append(out, r[4])
    out[#out + 1] = tostring(#r[5])
    append(out, r[5])
    append(out, r[6])
  else
    out[#out + 1] = '0'
  end
end
out[#out + 1] = table.concat(uniq)
append(out, message_values(uniq))
if found and ttl > 0 then touch(ttl, notice) end
return pack_strings(out)
