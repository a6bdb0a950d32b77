-- needs: thread gc
-- keep_latest: each namespace keeps only its head checkpoint (with its writes)
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = check_thread()
if state == 'absent' then return 1 end
if state ~= '' then return 'C' .. state end
local cand = {}
for _, ns in ipairs(redis.call('ZRANGE', NS, 0, -1)) do
  local head = redis.call('HGET', HEAD, ns)
  for _, f in ipairs(members(ns)) do
    if string.sub(f, #ns + 2) ~= head then remove_cp(f, cand) end
  end
end
collect_garbage(cand)
save_manifest_full()
touch(ttl, notice)
return 1
