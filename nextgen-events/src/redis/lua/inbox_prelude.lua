local stream, retry, received, finished = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local listed = {pending = KEYS[5], retrying = KEYS[6], running = KEYS[7], handled = KEYS[8], dead = KEYS[9]}
local inbox_prefix, group = ARGV[1], ARGV[2]

local function entry_key(id) return inbox_prefix .. 'entry:' .. id end
local function body_key(id) return inbox_prefix .. 'body:' .. id end

-- Files `id` in the index of `state` alone (in none when `state` is nil), scored by its
-- received time: stats count these, lists by state read them newest first.
local function list_under(id, state, received_at)
  for name, key in pairs(listed) do
    if name ~= state then redis.call('ZREM', key, id) end
  end
  if state then redis.call('ZADD', listed[state], received_at, id) end
end
