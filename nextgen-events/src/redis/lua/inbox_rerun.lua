local id, marker, recorded = ARGV[4], ARGV[5], ARGV[6]
local key = entry_key(id)
local state = redis.call('HGET', key, 'state')
if not state then return 'no_entry' end
if state == 'running' then return 'running' end
-- Only a string holding `done` is a done marker: a key of another kind can have the marker's
-- name when an event id reads like part of another key (`inbox`).
if redis.call('TYPE', marker).ok ~= 'string' or redis.call('GET', marker) ~= 'done' then
  return 'not_done'
end
redis.call('DEL', marker)
replay(id, ARGV[3])
-- The recorded reruns are a JSON array: the new one goes at its end. A value that is not an
-- array (changed outside nextgen-events) is started again.
local reruns = redis.call('HGET', key, 'reruns')
if reruns and reruns ~= '[]' and string.sub(reruns, 1, 1) == '[' and string.sub(reruns, -1) == ']' then
  reruns = string.sub(reruns, 1, -2) .. ',' .. recorded .. ']'
else
  reruns = '[' .. recorded .. ']'
end
redis.call('HSET', key, 'reruns', reruns)
return 'put_back'
