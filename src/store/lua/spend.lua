-- Spending budgets over fixed windows: adds ARGV[1] micro-credits to every key, unless a
-- blocking budget would go over its cap (then nothing changes and its index is returned). A
-- negative amount gives back what a call that failed had counted (never refused).
-- KEYS[i]  {t:<tenant>}:spend:<kind>:<key>:<window>
-- ARGV[1]  amount; then per key i: ARGV[2i] cap, ARGV[2i + 1] '1' when blocking, and
-- ARGV[2 * #KEYS + 2] the windows' time to live, ms (one per key, in order, after the pairs)
-- Returns {0, spent_1, …, spent_n} after the addition, or {i} when budget i refuses.
local amount = tonumber(ARGV[1])
local n = #KEYS
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 * i])
  local blocking = ARGV[2 * i + 1] == '1'
  local spent = tonumber(redis.call('GET', key) or '0')
  if amount > 0 and blocking and spent + amount > cap then
    return {i}
  end
end
local out = {0}
for i, key in ipairs(KEYS) do
  local spent = redis.call('INCRBY', key, amount)
  redis.call('PEXPIRE', key, ARGV[2 * n + 1 + i])
  out[#out + 1] = spent
end
return out
