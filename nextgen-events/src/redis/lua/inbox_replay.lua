local replayed = {}
for index = 4, #ARGV do
  if replay(ARGV[index], ARGV[3]) then table.insert(replayed, ARGV[index]) end
end
return replayed
