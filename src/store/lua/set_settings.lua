-- Replaces a tenant's settings, only if the tenant exists (HSET alone would create half a tenant).
-- KEYS[1] tenant hash     {t:<tenant>}:tenant
-- ARGV[1] settings JSON
-- Returns 1 when replaced, 0 when there is no such tenant.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'settings', ARGV[1])
return 1
