-- Takes or renews the lease on a sender account: one process drives an account at a time.
-- KEYS[1] lease string    {s:<account>}:lease   (the holder's name, expiring)
-- ARGV[1] holder, ARGV[2] lease length (ms), ARGV[3] "release" to give the lease back
-- Returns 1 when the caller holds (or released) the lease, 0 when another process holds it.
local current = redis.call('GET', KEYS[1])
if ARGV[3] == 'release' then
  if current == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
  return 1
end
if current and current ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
