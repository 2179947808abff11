-- Prepended to the scripts that create or change a request: queues its delivery job and
-- (re)schedules its timed tasks, inside the same atomic step.
-- jobs: the tenant's job stream (consumer group `delivery`); due: the tenant's task set, with
-- members `<task>:<request id>` scored by due time (unix ms).
local function queue_job(jobs, request_id)
  if redis.call('EXISTS', jobs) == 0 then
    redis.call('XGROUP', 'CREATE', jobs, 'delivery', '$', 'MKSTREAM')
  end
  redis.call('XADD', jobs, '*', 'request', request_id)
end

local function schedule(jobs, due, request_id, enqueue, first_arg)
  if enqueue == '1' then
    queue_job(jobs, request_id)
  end
  for i = first_arg, #ARGV, 2 do
    redis.call('ZADD', due, ARGV[i], ARGV[i + 1])
  end
end
