-- One delivery job of a tenant for a worker: one whose worker held it past the lease (it died
-- or hung) first, else the oldest new one.
-- KEYS[1] job stream {t:<tenant>}:jobs (consumer group `delivery`)
-- ARGV[1] consumer, ARGV[2] lease (ms)
-- Returns {job id, request id, 1 when taken over else 0} or false when there is none to claim
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local stale = redis.pcall('XAUTOCLAIM', KEYS[1], 'delivery', ARGV[1], ARGV[2], '0-0', 'COUNT', 1)
if stale.err then
  -- A stream without its consumer group holds no job this version queued.
  if string.find(stale.err, 'NOGROUP', 1, true) then
    return false
  end
  return redis.error_reply(stale.err)
end
local entry, reclaimed = stale[2][1], 1
if not entry then
  local fresh = redis.call('XREADGROUP', 'GROUP', 'delivery', ARGV[1], 'COUNT', 1, 'STREAMS', KEYS[1], '>')
  entry, reclaimed = fresh and fresh[1][2][1], 0
end
if not entry then
  return false
end
-- The entry's fields are {'request', <request id>}.
return {entry[1], entry[2][2], reclaimed}
