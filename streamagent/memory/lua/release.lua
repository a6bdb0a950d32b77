-- needs:
-- ARGV: token, lock ms (0 = release). 1 when the token still holds the thread.
if redis.call('GET', TURN) ~= ARGV[1] then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', TURN, tonumber(ARGV[2]))
else
  redis.call('DEL', TURN)
end
return 1
