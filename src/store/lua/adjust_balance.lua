-- Adds a signed amount to a tenant's balance unless it would go below zero, with its ledger line.
-- KEYS[1] tenant hash     {t:<tenant>}:tenant
-- KEYS[2] ledger list     {t:<tenant>}:ledger
-- KEYS[3] this call's receipt {t:<tenant>}:op:<random id>: a cluster client that lost the
--         answer to a dropped connection sends the call again, and the receipt makes that
--         second run answer as the first did instead of moving the money twice
-- ARGV[1] amount in micro-credits (signed)
-- ARGV[2] ledger entry JSON
-- ARGV[3] ledger length cap
-- ARGV[4] how long the receipt is kept, milliseconds
-- ARGV[5] the largest balance (10^15: sums of two stay exact in Lua's doubles)
-- Returns {1, balance_after} | {0, balance} (would go negative) | {-1, 0} (no tenant)
--       | {2, balance} (would pass the largest balance)
local receipt = redis.call('GET', KEYS[3])
if receipt then
  return {1, tonumber(receipt)}
end
-- Every tenant hash has a balance: its absence means no tenant.
local stored = redis.call('HGET', KEYS[1], 'balance')
if not stored then
  return {-1, 0}
end
local balance = tonumber(stored)
local amount = tonumber(ARGV[1])
if balance + amount < 0 then
  return {0, balance}
end
if balance + amount > tonumber(ARGV[5]) then
  return {2, balance}
end
balance = redis.call('HINCRBY', KEYS[1], 'balance', amount)
push_ledger(KEYS[2], balance, ARGV[2], ARGV[3])
redis.call('SET', KEYS[3], balance, 'PX', ARGV[4])
return {1, balance}
