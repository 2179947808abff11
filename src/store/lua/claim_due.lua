-- Takes the tenant's timed tasks that are due: a delivery that was put off goes back to the job
-- stream; any other task is leased (rescored to the lease's end, so it comes due again if the
-- worker dies) and returned.
-- KEYS[1] task set        {t:<tenant>}:due
-- KEYS[2] job stream      {t:<tenant>}:jobs
-- KEYS[3] put-off count   {t:<tenant>}:waiting
-- ARGV[1] now (unix ms), ARGV[2] end of the lease (unix ms), ARGV[3] at most this many
-- Returns {leased members, earliest remaining due time or false, deliveries put back}
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local leased = {}
local requeued = 0
for _, member in ipairs(items) do
  if string.sub(member, 1, 5) == 'send:' then
    -- (Never below 0: deliveries put off before the count was kept were never counted.)
    if redis.call('ZREM', KEYS[1], member) == 1 and tonumber(redis.call('GET', KEYS[3]) or '0') > 0 then
      redis.call('DECR', KEYS[3])
    end
    queue_job(KEYS[2], string.sub(member, 6))
    requeued = requeued + 1
  else
    redis.call('ZADD', KEYS[1], ARGV[2], member)
    table.insert(leased, member)
  end
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
-- (false, not nil: a nil would end the Lua array and drop the element)
return {leased, first[2] or false, requeued}
