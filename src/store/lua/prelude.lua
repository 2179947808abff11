-- Prepended to the scripts that create or change a request or move a balance: queues a
-- delivery job, (re)schedules timed tasks and writes ledger lines inside the same atomic step.
-- Every redis.call costs about a microsecond of Lua-to-Redis overhead on top of the command,
-- so the common path of each helper is one call.
-- jobs: the tenant's job stream (consumer group `delivery`); due: the tenant's task set, with
-- members `<task>:<request id>` scored by due time (unix ms).
local function queue_job(jobs, request_id)
  -- NOMKSTREAM answers nil when the stream does not exist yet: only then create it with its
  -- consumer group (Redis 6.2+).
  if not redis.call('XADD', jobs, 'NOMKSTREAM', '*', 'request', request_id) then
    redis.call('XGROUP', 'CREATE', jobs, 'delivery', '$', 'MKSTREAM')
    redis.call('XADD', jobs, '*', 'request', request_id)
  end
end

local function schedule(jobs, due, request_id, enqueue, first_arg)
  if enqueue == '1' then
    queue_job(jobs, request_id)
  end
  -- All the request's tasks in one ZADD (score, member pairs): one call, however many.
  if #ARGV > first_arg then
    redis.call('ZADD', due, unpack(ARGV, first_arg))
  end
end

-- Prepends `<balance_after>|<entry>` to the ledger and keeps its newest `cap` lines. The trim
-- runs in batches (once the list passes cap + cap/32) rather than on every line: a full ledger
-- would otherwise pay an LTRIM per charge. Readers take at most `cap` lines.
local function push_ledger(ledger, balance, entry, cap)
  cap = tonumber(cap)
  local length = redis.call('LPUSH', ledger, string.format('%d', balance) .. '|' .. entry)
  if length > cap + math.floor(cap / 32) then
    redis.call('LTRIM', ledger, 0, cap - 1)
  end
end
