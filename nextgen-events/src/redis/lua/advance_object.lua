if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local function bytes(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y and -1 or 1 end
  end
  if #a == #b then return 0 end
  return #a < #b and -1 or 1
end
local function integers(a, b)
  local na, nb = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if na ~= nb then return na and -1 or 1 end
  local order = #a == #b and bytes(a, b) or (#a < #b and -1 or 1)
  return na and -order or order
end
local newest = redis.call('HMGET', KEYS[2], 'created', 'event')
local by_created = newest[1] and integers(newest[1], ARGV[2])
if not newest[2] or not by_created or by_created < 0 or (by_created == 0 and bytes(newest[2], ARGV[3]) < 0) then
  redis.call('HSET', KEYS[2], 'created', ARGV[2], 'event', ARGV[3])
end
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('DEL', KEYS[1])
return 1
