-- Replaces a request's record if nobody changed it since it was read (compare-and-set on the
-- version), with an optional balance movement and its ledger line, atomically.
-- KEYS[1] request         {t:<tenant>}:r:<id>   (string `<version>|<retention end>|<record JSON>`)
-- ARGV[1] the version that was read
-- ARGV[2] the new stored request: `<version + 1>|<new retention end>|<record JSON>`
-- ARGV[3] how long to keep the request from now, milliseconds
-- ARGV[4] now by the service clock, unix milliseconds: a request past its retention end is gone
-- A change that moves nothing else (most do not) passes only these: every key and argument
-- costs Redis time to hand to Lua. One that does passes all of:
-- KEYS[2] tenant hash     {t:<tenant>}:tenant
-- KEYS[3] ledger list     {t:<tenant>}:ledger
-- KEYS[4] job stream      {t:<tenant>}:jobs
-- KEYS[5] task set        {t:<tenant>}:due
-- KEYS[6] dead letters    {t:<tenant>}:dead
-- ARGV[5] balance movement in micro-credits (0 for none)
-- ARGV[6] ledger entry JSON, or ""
-- ARGV[7] ledger length cap
-- ARGV[8] a dead letter JSON (a report given up on), or ""; ARGV[9] dead letters kept
-- ARGV[10] request id; ARGV[11] "1" to queue a delivery job
-- ARGV[12..] due time, task member pairs
-- Returns 1 when stored, 0 on a version conflict, -1 when the request is gone.
-- Only the head `<version>|<end>|` is read (a missing key reads as ""): the record itself is
-- replaced whole, so copying it into Lua would be wasted.
local head = redis.call('GETRANGE', KEYS[1], 0, 47)
local v, e = string.match(head, '^(%d+)|(%d+)|')
if not v or tonumber(e) <= tonumber(ARGV[4]) then
  return -1
end
if v ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
if #KEYS == 1 then
  return 1
end
if ARGV[6] ~= '' then
  local balance = redis.call('HINCRBY', KEYS[2], 'balance', tonumber(ARGV[5]))
  push_ledger(KEYS[3], balance, ARGV[6], ARGV[7])
end
if ARGV[8] ~= '' then
  redis.call('LPUSH', KEYS[6], ARGV[8])
  redis.call('LTRIM', KEYS[6], 0, tonumber(ARGV[9]) - 1)
end
schedule(KEYS[4], KEYS[5], ARGV[10], ARGV[11], 12)
return 1
