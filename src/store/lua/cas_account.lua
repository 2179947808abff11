-- Replaces a sender account's record if nobody changed it since it was read (version 0: create
-- it only if it does not exist).
-- KEYS[1] account hash    {s:<account>}   (fields `v` version, `d` record JSON)
-- ARGV[1] the version that was read ("0": absent), ARGV[2] new record JSON
-- Returns the new version, or 0 on a conflict.
local v = redis.call('HGET', KEYS[1], 'v') or '0'
if v ~= ARGV[1] then
  return 0
end
local next_v = tonumber(v) + 1
redis.call('HSET', KEYS[1], 'v', next_v, 'd', ARGV[2])
return next_v
