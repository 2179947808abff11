-- Admits one paid call: its rate limits (GCRA, as limit.lua) and its spending budgets (as
-- spend.lua) decided together. When any refuses nothing changes; else every limit's TAT
-- moves on and every budget counts the fee.
-- KEYS[1..L]        limit keys ({t:<tenant>}:rl:<kind>:<key>)
-- KEYS[L+1..L+S]    budget keys ({t:<tenant>}:spend:<kind>:<key>:<window>)
-- ARGV[1] now, unix ms; ARGV[2] L; ARGV[3] the fee, micro-credits
-- ARGV[3 + 2i - 1], ARGV[3 + 2i]  limit i's interval and tolerance, ms
-- ARGV[3 + 2L + 3j - 2 .. 3j]      budget j's cap, '1' when blocking, time to live (ms)
-- Returns {0, tat_1 … tat_L, spent_1 … spent_S}, {1, i, wait_ms} when limit i refuses, or
-- {2, j} when budget j refuses.
local now = tonumber(ARGV[1])
local l = tonumber(ARGV[2])
local fee = tonumber(ARGV[3])
local s = #KEYS - l
local tats = {}
local worst, worst_i = 0, 0
for i = 1, l do
  local tau = tonumber(ARGV[3 + 2 * i])
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
local base = 3 + 2 * l
for j = 1, s do
  local cap = tonumber(ARGV[base + 3 * j - 2])
  local blocking = ARGV[base + 3 * j - 1] == '1'
  local spent = tonumber(redis.call('GET', KEYS[l + j]) or '0')
  if fee > 0 and blocking and spent + fee > cap then
    return {2, j}
  end
end
local out = {0}
for i = 1, l do
  local new_tat = tats[i] + tonumber(ARGV[2 + 2 * i])
  redis.call('SET', KEYS[i], new_tat, 'PX', new_tat - now + 1000)
  out[#out + 1] = new_tat
end
for j = 1, s do
  out[#out + 1] = redis.call('INCRBY', KEYS[l + j], fee)
  redis.call('PEXPIRE', KEYS[l + j], ARGV[base + 3 * j])
end
return out
