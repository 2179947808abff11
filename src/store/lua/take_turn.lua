-- Whose delivery job goes next (`domain::turns`): the tenant with the lowest turn tag, passing
-- over the ones named. Its tag moves on by its turn's cost, and the clock to its turn's start.
-- The arithmetic is the domain's; this script only makes it one atomic step for every worker
-- of every process.
-- KEYS[1] {verigram}:turns       sorted set: tenant with jobs -> turn tag (a tenant added at 0
--                                starts at the clock)
-- KEYS[2] {verigram}:turn_clock  the tag the turn served last started at
-- KEYS[3] {verigram}:turn_costs  hash: tenant -> cost of one of its turns (absent: ARGV[1])
-- ARGV[1] the cost of a turn at the default weight
-- ARGV[2] a tenant whose last turn found no job to claim ("" for none); ARGV[3] what that turn
--         cost, ARGV[4] where it started, ARGV[5] the clock before it: the turn is undone (its
--         cost taken off the tag, whatever other turns did meanwhile; the clock put back
--         unless another turn moved it on)
-- ARGV[6..] tenants to pass over (their jobs are all in workers' hands)
-- Returns {tenant, start, cost, clock before} or false when no tenant is left
if ARGV[2] ~= '' then
  if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
    redis.call('ZADD', KEYS[1], 'XX', 'INCR', -tonumber(ARGV[3]), ARGV[2])
  end
  if redis.call('GET', KEYS[2]) == ARGV[4] then
    redis.call('SET', KEYS[2], ARGV[5])
  end
end
local skip = {}
for i = 6, #ARGV do
  skip[ARGV[i]] = true
end
local first = redis.call('ZRANGE', KEYS[1], 0, #ARGV - 5, 'WITHSCORES')
for i = 1, #first, 2 do
  local tenant = first[i]
  if not skip[tenant] then
    local clock = tonumber(redis.call('GET', KEYS[2]) or '0')
    local start = math.max(tonumber(first[i + 1]), clock)
    local cost = tonumber(redis.call('HGET', KEYS[3], tenant) or ARGV[1])
    -- %d: a plain integer, never an exponent (tags stay below 2^53).
    redis.call('ZADD', KEYS[1], 'XX', string.format('%d', start + cost), tenant)
    if start > clock then
      redis.call('SET', KEYS[2], string.format('%d', start))
    end
    return {tenant, string.format('%d', start), string.format('%d', cost), string.format('%d', clock)}
  end
end
return false
