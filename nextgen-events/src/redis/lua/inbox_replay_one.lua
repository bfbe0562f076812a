local function replay(id, now)
  local key = entry_key(id)
  local record = redis.call('HMGET', key, 'state', 'stream_id', 'received_at_ms')
  if not record[1] or record[1] == 'running' then return false end
  redis.call('ZREM', retry, id)
  redis.call('ZREM', finished, id)
  redis.call('HDEL', key, 'owner', 'first_failed_at_ms', 'finished_at_ms')
  redis.call('HSET', key, 'state', 'pending', 'attempts', 0, 'due_at_ms', now)
  if not record[2] then
    redis.call('HSET', key, 'stream_id', redis.call('XADD', stream, '*', 'id', id))
  end
  list_under(id, 'pending', tonumber(record[3]) or 0)
  return true
end
