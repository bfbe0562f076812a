local id, received_at = ARGV[3], ARGV[7]
local key = entry_key(id)
if redis.call('EXISTS', key) == 1 then return 0 end
local stream_id = redis.call('XADD', stream, '*', 'id', id)
redis.call('HSET', key, 'event_type', ARGV[4], 'signed_at', ARGV[6],
  'received_at_ms', received_at, 'state', 'pending', 'attempts', 0, 'due_at_ms', received_at,
  'stream_id', stream_id)
if ARGV[8] ~= '' then redis.call('HSET', key, 'signature', ARGV[8]) end
redis.call('SET', body_key(id), ARGV[5])
redis.call('ZADD', received, received_at, id)
list_under(id, 'pending', received_at)
return 1
