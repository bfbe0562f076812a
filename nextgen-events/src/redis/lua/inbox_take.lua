local now, consumer, min_idle, token = ARGV[3], ARGV[4], ARGV[5], ARGV[6]

local due = redis.call('ZRANGEBYSCORE', retry, '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(due) do
  redis.call('ZREM', retry, id)
  local key = entry_key(id)
  if redis.call('HGET', key, 'state') == 'pending' then
    redis.call('HSET', key, 'stream_id', redis.call('XADD', stream, '*', 'id', id))
  end
end

-- Whether the stream entry `stream_id` (just delivered to this consumer) may be taken, its
-- record being in one of `states`. A leftover (no record, or a record that moved on to another
-- stream entry) is acknowledged and deleted; a record in another state is left to its owner.
local function usable(stream_id, fields, states)
  local id = fields and fields[1] == 'id' and fields[2]
  local record = id and redis.call('HMGET', entry_key(id), 'state', 'stream_id')
  if not record or record[2] ~= stream_id then
    redis.call('XACK', stream, group, stream_id)
    redis.call('XDEL', stream, stream_id)
    return nil
  end
  if not states[record[1]] then
    redis.call('XACK', stream, group, stream_id)
    return nil
  end
  return id
end

local id
local cursor = '0-0'
for _ = 1, 100 do
  local claimed = redis.call('XAUTOCLAIM', stream, group, consumer, min_idle, cursor, 'COUNT', 1)
  cursor = claimed[1]
  local entry = claimed[2][1]
  if entry and entry[2] then
    id = usable(entry[1], entry[2], {pending = true, running = true})
    if id then break end
  end
  if cursor == '0-0' then break end
end
if not id then
  for _ = 1, 100 do
    local read = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
    if not read then break end
    local entry = read[1][2][1]
    id = usable(entry[1], entry[2], {pending = true})
    if id then break end
  end
end
if not id then return nil end

local key = entry_key(id)
-- A field changed outside nextgen-events must not fail this script halfway (Redis keeps the
-- writes made before an error, and the entry would be taken again and fail forever): an
-- attempts count HINCRBY cannot add to starts again from 0 and is handed back, as every
-- field is, for the caller to turn the entry into a dead letter naming it.
local bad_attempts = redis.call('HGET', key, 'attempts')
if bad_attempts and string.match(bad_attempts, '^%d+$') and #bad_attempts < 18 then
  bad_attempts = ''
elseif bad_attempts then
  redis.call('HSET', key, 'attempts', 0)
else
  bad_attempts = ''
end
local attempts = redis.call('HINCRBY', key, 'attempts', 1)
redis.call('HSET', key, 'state', 'running', 'owner', token)
local record = redis.call('HMGET', key, 'event_type', 'signed_at', 'received_at_ms', 'first_failed_at_ms', 'signature')
list_under(id, 'running', tonumber(record[3]) or 0)
local body = redis.call('GET', body_key(id)) or ''
return {id, record[1] or '', body, record[2] or '', record[3] or '', tostring(attempts), record[4] or '', record[5] or '', bad_attempts}
