-- Adds a signed amount to a tenant's balance unless it would go below zero, with its ledger line.
-- KEYS[1] tenant hash     {t:<tenant>}:tenant
-- KEYS[2] ledger list     {t:<tenant>}:ledger
-- ARGV[1] amount in micro-credits (signed)
-- ARGV[2] ledger entry JSON
-- ARGV[3] ledger length cap
-- Returns {1, balance_after} | {0, balance} (would go negative) | {-1, 0} (no tenant)
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
balance = redis.call('HINCRBY', KEYS[1], 'balance', amount)
push_ledger(KEYS[2], balance, ARGV[2], ARGV[3])
return {1, balance}
