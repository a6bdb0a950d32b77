-- needs: thread
-- a consistent snapshot of the thread's data keys (DUMP payloads, false where absent)
local state = check_thread()
if state == 'absent' then return {'A'} end
if state ~= '' then return {'C' .. state} end
local out = {''}
for i = 1, 9 do out[#out + 1] = redis.call('DUMP', KEYS[i]) or false end
return out
