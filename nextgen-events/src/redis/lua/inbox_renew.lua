local record = redis.call('HMGET', entry_key(ARGV[3]), 'state', 'owner', 'stream_id')
if record[1] ~= 'running' or record[2] ~= ARGV[4] or not record[3] then return 0 end
local claimed = redis.call('XCLAIM', stream, group, ARGV[5], 0, record[3], 'JUSTID')
if #claimed == 0 then return 0 end
return 1
