local ok, consumers = pcall(redis.call, 'XINFO', 'CONSUMERS', stream, group)
if not ok then return 0 end
local forgotten = 0
for _, consumer in ipairs(consumers) do
  local fields = {}
  for index = 1, #consumer, 2 do fields[consumer[index]] = consumer[index + 1] end
  if fields.name ~= ARGV[3] and fields.pending == 0 and fields.idle > tonumber(ARGV[4]) then
    redis.call('XGROUP', 'DELCONSUMER', stream, group, fields.name)
    forgotten = forgotten + 1
  end
end
return forgotten
