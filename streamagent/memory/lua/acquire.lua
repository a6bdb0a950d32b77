-- needs:
-- ARGV: lock ms, expiry ms of a new tombstone key (0: none). Returns {token, 0} when
-- acquired, {holder token, its pttl} when busy. The token comes from the thread's fencing
-- counter (in its tombstone key, which outlives the data).
local holder = redis.call('GET', TURN)
if holder then return {holder, redis.call('PTTL', TURN)} end
local existed = redis.call('EXISTS', SEEN)
local token = tostring(redis.call('HINCRBY', SEEN, 'f', 1))
if existed == 0 and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', SEEN, ARGV[2]) end
redis.call('SET', TURN, token, 'PX', tonumber(ARGV[1]))
return {token, 0}
