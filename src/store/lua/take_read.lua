-- A recipient read everything up to a message id: takes (and forgets) the requests whose
-- messages that covers.
-- KEYS[1] sent messages   {s:<account>}:sent:<peer>  (members `<tenant>|<request>`, score message id)
-- ARGV[1] the highest message id read
-- Returns the members.
local read = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #read > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
end
return read
