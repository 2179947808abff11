-- Admits one call: its rate limits (GCRA, see domain::limits) and its spending budgets
-- decided together. When any refuses nothing changes; else, with ARGV[4] = '1', every
-- limit's theoretical arrival time (TAT) moves on by one interval and every budget counts the
-- fee ('0' only looks). Also serves calls with limits only (no budgets, fee 0).
-- KEYS[1..L]        limit keys ({t:<tenant>}:rl:<kind>:<key>), holding a TAT in unix ms
-- KEYS[L+1..L+S]    budget keys ({t:<tenant>}:spend:<kind>:<key>:<window>)
-- ARGV[1] now, unix ms; ARGV[2] L; ARGV[3] the fee, micro-credits; ARGV[4] '1' to consume
-- ARGV[3 + 2i], ARGV[4 + 2i]       limit i's interval and tolerance, ms
-- ARGV[4 + 2L + 3j - 2 .. 3j]      budget j's cap, '1' when blocking, time to live (ms)
-- Returns {0, tat_1 … tat_L, spent_1 … spent_S} (as they are after this call), {1, i, wait_ms}
-- when limit i refuses, or {2, j} when budget j refuses.
local now = tonumber(ARGV[1])
local l = tonumber(ARGV[2])
local fee = tonumber(ARGV[3])
local consume = ARGV[4] == '1'
local s = #KEYS - l
local tats = {}
local worst, worst_i = 0, 0
for i = 1, l do
  local tau = tonumber(ARGV[4 + 2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then
    tat = now
  end
  if tat - now > tau and tat - now - tau > worst then
    worst, worst_i = tat - now - tau, i
  end
  tats[i] = tat
end
if worst_i > 0 then
  return {1, worst_i, worst}
end
local base = 4 + 2 * l
local spent = {}
for j = 1, s do
  local cap = tonumber(ARGV[base + 3 * j - 2])
  local blocking = ARGV[base + 3 * j - 1] == '1'
  spent[j] = tonumber(redis.call('GET', KEYS[l + j]) or '0')
  if fee > 0 and blocking and spent[j] + fee > cap then
    return {2, j}
  end
end
local out = {0}
for i = 1, l do
  local new_tat = tats[i] + tonumber(ARGV[3 + 2 * i])
  if consume then
    redis.call('SET', KEYS[i], new_tat, 'PX', new_tat - now + 1000)
  end
  out[#out + 1] = new_tat
end
for j = 1, s do
  if consume then
    spent[j] = redis.call('INCRBY', KEYS[l + j], fee)
    redis.call('PEXPIRE', KEYS[l + j], ARGV[base + 3 * j])
  else
    spent[j] = spent[j] + fee
  end
  out[#out + 1] = spent[j]
end
return out
