local done = {}
for _, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'string' and redis.call('GET', key) == 'done' then
    table.insert(done, key)
  end
end
return done
