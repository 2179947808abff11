-- A recipient read everything up to a message id: takes (and forgets) the requests whose
-- messages that covers.
-- KEYS[1] sent messages   {s:<account>}:sent:<peer>  (members `<tenant>|<request>`, score message id)
-- KEYS[2] this call's receipt {s:<account>}:op:<random id>: a cluster client that lost the
--         answer to a dropped connection sends the call again, and the receipt gives that
--         second run what the first took (else those messages would never read as `read`)
-- ARGV[1] the highest message id read
-- ARGV[2] how long the receipt is kept, milliseconds
-- Returns the members.
local receipt = redis.call('GET', KEYS[2])
if receipt then
  return cjson.decode(receipt)
end
local read = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #read > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
  redis.call('SET', KEYS[2], cjson.encode(read), 'PX', ARGV[2])
end
return read
