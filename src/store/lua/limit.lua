-- Rate limits (GCRA, see domain::limits): decides all the limits of one call at once. When
-- any refuses, nothing is changed and the one with the longest wait is named; else, with
-- ARGV[2] = '1', every key's theoretical arrival time (TAT) moves on by one interval.
-- KEYS[i]  the limit keys ({t:<tenant>}:rl:<kind>:<key>), holding a TAT in unix ms
-- ARGV[1]  now by the service clock, unix ms; ARGV[2] '1' to consume, '0' to look only
-- ARGV[1 + 2i], ARGV[2 + 2i]  key i's interval and tolerance, ms
-- Returns {0, tat_1, …, tat_n} (the TATs after this call), or {i, wait_ms} when key i refuses.
local now = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local tats = {}
local worst, worst_i = 0, 0
for i, key in ipairs(KEYS) do
  local tau = tonumber(ARGV[2 + 2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then
    tat = now
  end
  if tat - now > tau and tat - now - tau > worst then
    worst, worst_i = tat - now - tau, i
  end
  tats[i] = tat
end
if worst_i > 0 then
  return {worst_i, worst}
end
local out = {0}
for i, key in ipairs(KEYS) do
  local new_tat = tats[i] + tonumber(ARGV[1 + 2 * i])
  if consume then
    redis.call('SET', key, new_tat, 'PX', new_tat - now + 1000)
  end
  out[#out + 1] = new_tat
end
return out
