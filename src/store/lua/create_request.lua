-- Stores a new request and charges its fee, atomically.
-- KEYS[1] tenant hash     {t:<tenant>}:tenant   (field `balance`, integer micro-credits)
-- KEYS[2] request hash    {t:<tenant>}:req:<id> (fields `v` version, `d` record JSON, `e` end)
-- KEYS[3] ledger list     {t:<tenant>}:ledger   (newest first, `<balance_after>|<json>`)
-- KEYS[4] job stream      {t:<tenant>}:jobs
-- KEYS[5] task set        {t:<tenant>}:due
-- KEYS[6], KEYS[7]        on a single Redis only: the advisory indexes {verigram}:work and
--                         {verigram}:due, updated here rather than in a second round trip
--                         (on a cluster they live in another slot: the caller updates them)
-- ARGV[1] fee in micro-credits (0 for a free request)
-- ARGV[2] record JSON
-- ARGV[3] retention of the request key, milliseconds
-- ARGV[4] ledger entry JSON, or "" when nothing is charged
-- ARGV[5] ledger length cap
-- ARGV[6] end of retention by the service clock, unix milliseconds (field `e`)
-- ARGV[7] tenant id (for the advisory indexes; "" without KEYS[6..7])
-- ARGV[8] request id; ARGV[9] "1" to queue a delivery job
-- ARGV[10..] due time, task member pairs
-- Returns {1, balance_after} | {0, "balance"} | {0, "tenant"} | {0, "exists"}
-- Every tenant hash has a balance: its absence means no tenant.
local stored_balance = redis.call('HGET', KEYS[1], 'balance')
if not stored_balance then
  return {0, 'tenant'}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  -- The same record (its id is random, its JSON has the creation time): this call was
  -- already applied, and a cluster client sent it again after a lost connection.
  if redis.call('HGET', KEYS[2], 'v') == '1' and redis.call('HGET', KEYS[2], 'd') == ARGV[2] then
    return {1, tonumber(stored_balance)}
  end
  return {0, 'exists'}
end
local fee = tonumber(ARGV[1])
local balance = tonumber(stored_balance)
if balance < fee then
  return {0, 'balance'}
end
if fee ~= 0 then
  balance = redis.call('HINCRBY', KEYS[1], 'balance', -fee)
end
redis.call('HSET', KEYS[2], 'v', 1, 'd', ARGV[2], 'e', ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then
  redis.call('LPUSH', KEYS[3], string.format('%d', balance) .. '|' .. ARGV[4])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[5]) - 1)
end
schedule(KEYS[4], KEYS[5], ARGV[8], ARGV[9], 10)
if #KEYS >= 7 then
  if ARGV[9] == '1' then
    redis.call('SADD', KEYS[6], ARGV[7])
  end
  local first = nil
  for i = 10, #ARGV, 2 do
    local at = tonumber(ARGV[i])
    if first == nil or at < first then
      first = at
    end
  end
  if first ~= nil then
    -- LT lowers an existing score and adds a missing member.
    redis.call('ZADD', KEYS[7], 'LT', first, ARGV[7])
  end
end
return {1, balance}
