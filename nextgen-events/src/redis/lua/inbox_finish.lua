local id, token, outcome, now = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local key = entry_key(id)
local record = redis.call('HMGET', key, 'state', 'owner', 'stream_id', 'received_at_ms')
if record[1] ~= 'running' or record[2] ~= token then return 0 end
if record[3] then
  redis.call('XACK', stream, group, record[3])
  redis.call('XDEL', stream, record[3])
end
redis.call('HDEL', key, 'owner', 'stream_id')
if outcome == 'handled' then
  redis.call('HSET', key, 'state', 'handled', 'finished_at_ms', now)
  redis.call('ZADD', finished, now, id)
  list_under(id, 'handled', tonumber(record[4]) or 0)
  return 1
end
redis.call('HSETNX', key, 'first_failed_at_ms', now)
redis.call('HSET', key, 'last_errors', ARGV[8])
if outcome == 'retry' then
  redis.call('HSET', key, 'state', 'pending', 'due_at_ms', ARGV[7])
  redis.call('ZADD', retry, ARGV[7], id)
  list_under(id, 'retrying', tonumber(record[4]) or 0)
else
  redis.call('HSET', key, 'state', 'dead', 'finished_at_ms', now)
  list_under(id, 'dead', tonumber(record[4]) or 0)
end
return 1
