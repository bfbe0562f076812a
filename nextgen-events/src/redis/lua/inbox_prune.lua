local ids = redis.call('ZRANGEBYSCORE', finished, '-inf', '(' .. ARGV[3], 'LIMIT', 0, ARGV[4])
local pruned = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', finished, id)
  local key = entry_key(id)
  if redis.call('HGET', key, 'state') == 'handled' then
    redis.call('DEL', key, body_key(id))
    redis.call('ZREM', received, id)
    list_under(id, nil, 0)
    pruned = pruned + 1
  end
end
return {pruned, #ids}
