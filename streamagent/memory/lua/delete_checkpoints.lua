-- needs: thread gc
-- ARGV: ttl, notice, then "ns\0id" fields to delete. Heads move to the newest remaining
-- checkpoint; a thread left without checkpoints is deleted like delete_thread.
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = check_thread()
if state == 'absent' then return 1 end
if state ~= '' then return 'C' .. state end
local cand = {}
for i = 3, #ARGV do
  if redis.call('HEXISTS', CP, ARGV[i]) == 1 then remove_cp(ARGV[i], cand) end
end
collect_garbage(cand)
if redis.call('HLEN', CP) == 0 then
  wipe(notice)
  return 1
end
save_manifest_full()
touch(ttl, notice)
return 1
