local ids = redis.call('ZRANGEBYSCORE', listed.dead, ARGV[4], '+inf', 'LIMIT', 0, ARGV[5])
local replayed, unknown = {}, {}
for _, id in ipairs(ids) do
  local record = redis.call('HMGET', entry_key(id), 'state', 'received_at_ms')
  if not record[1] then
    list_under(id, nil, 0)
    redis.call('ZREM', received, id)
    redis.call('ZREM', retry, id)
    redis.call('ZREM', finished, id)
    table.insert(unknown, id)
  elseif record[1] == 'dead' and replay(id, ARGV[3]) then
    table.insert(replayed, id)
  elseif listed[record[1]] then
    list_under(id, record[1], tonumber(record[2]) or 0)
  else
    list_under(id, nil, 0)
  end
end
return {replayed, unknown, #ids}
