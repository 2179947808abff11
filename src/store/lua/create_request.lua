-- Stores a new request and charges its fee, atomically.
-- KEYS[1] tenant hash     {t:<tenant>}:tenant   (field `balance`, integer micro-credits)
-- KEYS[2] request         {t:<tenant>}:r:<id>   (string `<version>|<retention end>|<record JSON>`)
-- KEYS[3] ledger list     {t:<tenant>}:ledger   (newest first, `<balance_after>|<json>`)
-- KEYS[4] job stream      {t:<tenant>}:jobs
-- KEYS[5] task set        {t:<tenant>}:due
-- KEYS[6], KEYS[7]        on a single Redis only: the advisory indexes {verigram}:turns and
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
-- The common path is SET NX, then HINCRBY: the balance is read by the charge itself (every
-- call from Lua costs about a microsecond beyond the command). Refusals, which the service
-- mostly answers before coming here, put things back as they were.
local fee = tonumber(ARGV[1])
-- The balance now, or nil when there is no tenant (every tenant hash has a balance).
local function balance_now()
  local stored = redis.call('HGET', KEYS[1], 'balance')
  return stored and tonumber(stored)
end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then
  -- A request already stored exactly so (its id is random, its JSON has the creation time)
  -- means this call was applied before and a cluster client sent it again after a lost
  -- connection: it answers as applied, and charges nothing more.
  if redis.call('GET', KEYS[2]) == ARGV[2] then
    local balance = balance_now()
    if not balance then
      return {0, 'tenant'}
    end
    return {1, balance}
  end
  return {0, 'exists'}
end
local balance
if fee ~= 0 then
  balance = redis.call('HINCRBY', KEYS[1], 'balance', -fee)
  if balance < 0 then
    -- Not enough (balance < fee), or no tenant: HINCRBY made a hash of the balance alone.
    redis.call('DEL', KEYS[2])
    if redis.call('HLEN', KEYS[1]) == 1 and balance == -fee then
      redis.call('DEL', KEYS[1])
      return {0, 'tenant'}
    end
    redis.call('HINCRBY', KEYS[1], 'balance', fee)
    return {0, 'balance'}
  end
else
  balance = balance_now()
  if not balance or balance < 0 then
    redis.call('DEL', KEYS[2])
    return {0, balance and 'balance' or 'tenant'}
  end
end
if ARGV[4] ~= '' then
  push_ledger(KEYS[3], balance, ARGV[4], ARGV[5])
end
schedule(KEYS[4], KEYS[5], ARGV[7], ARGV[8], 9)
if #KEYS >= 7 then
  if ARGV[8] == '1' then
    -- NX 0: a tenant new to the queue starts its turns at the clock (`take_turn.lua`).
    redis.call('ZADD', KEYS[6], 'NX', 0, ARGV[6])
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
