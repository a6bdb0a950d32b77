-- needs: thread refs
-- Pending writes of one task, atomically. ARGV: ttl, notice, fence, the counts of writes,
-- messages and known refs, then (mode, field, value) writes (mode '1': overwrite), (ref, value)
-- message pairs and the known refs. Returns as put.lua.
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local fence = ARGV[3]
local nwrites, nmsgs, nknown = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local state = check_thread()
if state ~= '' and state ~= 'absent' then return 'C' .. state end
if fenced_out(fence) then return 'F' end
local i = 7 + 3 * nwrites + 2 * nmsgs
for _ = 1, nknown do
  if redis.call('HEXISTS', MSGS, ARGV[i]) == 0 then return 0 end
  i = i + 1
end
local m = 7 + 3 * nwrites
hset_range(MSGS, ARGV, m, m + 2 * nmsgs - 1)
for j = 7, 7 + 3 * nwrites - 1, 3 do
  local field, value = ARGV[j + 1], ARGV[j + 2]
  if ARGV[j] == '1' then
    redis.call('HSET', W, field, value)
    redis.call('ZADD', WI, 0, field)
  elseif redis.call('HSETNX', W, field, value) == 1 then
    redis.call('ZADD', WI, 0, field)
  end
end
local wrote = nwrites > 0 and '1' or '?'
save_manifest('????' .. (nmsgs > 0 and '1' or '?') .. wrote .. wrote .. '?')
mark_live(ttl, notice)
return 1
