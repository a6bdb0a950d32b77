-- needs: thread
-- ARGV: ttl, notice, then 9 DUMP payloads ('' where absent): the thread becomes a copy
local ttl, notice = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('DEL', CP, REFS, IDX, BLOBS, MSGS, W, WI, NS, HEAD)
for i = 1, 9 do
  if ARGV[i + 2] ~= '' then redis.call('RESTORE', KEYS[i], 0, ARGV[i + 2]) end
end
save_manifest_full()
mark_live(ttl, notice)
return 1
