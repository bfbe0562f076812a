local value = redis.call('GET', KEYS[1])
if value == 'done' then return 1 end
if value and value ~= ARGV[1] then return 2 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
