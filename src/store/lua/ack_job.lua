-- A job is done: acknowledge and delete it. Optionally puts the delivery off to a later time.
-- KEYS[1] job stream      {t:<tenant>}:jobs
-- KEYS[2] task set        {t:<tenant>}:due
-- KEYS[3] put-off count   {t:<tenant>}:waiting
-- ARGV[1] job id; ARGV[2] "" or the time to try again (unix ms); ARGV[3] request id
-- Returns the number of jobs left in the stream (waiting or held).
redis.call('XACK', KEYS[1], 'delivery', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
if ARGV[2] ~= '' then
  if redis.call('ZADD', KEYS[2], ARGV[2], 'send:' .. ARGV[3]) == 1 then
    redis.call('INCR', KEYS[3])
  end
end
return redis.call('XLEN', KEYS[1])
