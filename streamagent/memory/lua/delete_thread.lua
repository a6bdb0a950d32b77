-- needs: thread
-- ARGV: notice seconds (0: no tombstone)
local notice = tonumber(ARGV[1])
wipe(notice)
return 1
