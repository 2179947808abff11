-- Gives back one call's worth of rate limits (GCRA): each key's TAT moves back one interval,
-- never before now (a call that was counted and then did not count, e.g. a right code).
-- KEYS[i] limit keys; ARGV[1] now, unix ms; ARGV[1 + i] key i's interval, ms
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', key) or now)
  local back = tat - tonumber(ARGV[1 + i])
  if back > now then
    redis.call('SET', key, back, 'PX', back - now + 1000)
  else
    redis.call('DEL', key)
  end
end
return 1
