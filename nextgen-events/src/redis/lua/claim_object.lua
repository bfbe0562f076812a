local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return {'busy'} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local newest = redis.call('HMGET', KEYS[2], 'created', 'event')
if newest[1] and newest[2] then return {'claimed', newest[1], newest[2]} end
return {'claimed'}
