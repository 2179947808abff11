-- Stores a new request and charges its fee, atomically.
-- KEYS[1] tenant hash     {t:<tenant>}:tenant   (field `balance`, integer micro-credits)
-- KEYS[2] request         {t:<tenant>}:r:<id>   (string `<version>|<retention end>|<record JSON>`)
-- KEYS[3] ledger list     {t:<tenant>}:ledger   (newest first, `<balance_after>|<json>`)
-- KEYS[4] job stream      {t:<tenant>}:jobs
-- KEYS[5] task set        {t:<tenant>}:due
-- KEYS[6], KEYS[7]        on a single Redis only: the advisory indexes {verigram}:work and
--                         {verigram}:due, updated here rather than in a second round trip
--                         (on a cluster they live in another slot: the caller updates them)
-- ARGV[1] fee in micro-credits (0 for a free request)
-- ARGV[2] the stored request, version 1: `1|<retention end, unix ms>|<record JSON>`
-- ARGV[3] retention of the request key, milliseconds
-- ARGV[4] ledger entry JSON, or "" when nothing is charged
-- ARGV[5] ledger length cap
-- ARGV[6] tenant id (for the advisory indexes; "" without KEYS[6..7])
-- ARGV[7] request id; ARGV[8] "1" to queue a delivery job
-- ARGV[9..] due time, task member pairs
-- Returns {1, balance_after} | {0, "balance"} | {0, "tenant"} | {0, "exists"}
-- Every tenant hash has a balance: its absence means no tenant.
local stored_balance = redis.call('HGET', KEYS[1], 'balance')
if not stored_balance then
  return {0, 'tenant'}
end
local fee = tonumber(ARGV[1])
local balance = tonumber(stored_balance)
-- A request already stored exactly so (its id is random, its JSON has the creation time) means
-- this call was applied before and a cluster client sent it again after a lost connection:
-- it answers as applied, and charges nothing more. Looked at only when the call cannot go on.
local function applied_before()
  return redis.call('GET', KEYS[2]) == ARGV[2]
end
if balance < fee then
  if applied_before() then
    return {1, balance}
  end
  return {0, 'balance'}
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  if applied_before() then
    return {1, balance}
  end
  return {0, 'exists'}
end
if fee ~= 0 then
  balance = redis.call('HINCRBY', KEYS[1], 'balance', -fee)
end
if ARGV[4] ~= '' then
  push_ledger(KEYS[3], balance, ARGV[4], ARGV[5])
end
schedule(KEYS[4], KEYS[5], ARGV[7], ARGV[8], 9)
if #KEYS >= 7 then
  if ARGV[8] == '1' then
    redis.call('SADD', KEYS[6], ARGV[6])
  end
  local first = nil
  for i = 9, #ARGV, 2 do
    local at = tonumber(ARGV[i])
    if first == nil or at < first then
      first = at
    end
  end
  if first ~= nil then
    -- LT lowers an existing score and adds a missing member.
    redis.call('ZADD', KEYS[7], 'LT', first, ARGV[6])
  end
end
return {1, balance}
