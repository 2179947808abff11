-- Removes a finished task, unless it was scheduled anew since it was leased.
-- KEYS[1] task set        {t:<tenant>}:due
-- ARGV[1] member, ARGV[2] the lease's end it was taken with
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) == tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
end
return 1
