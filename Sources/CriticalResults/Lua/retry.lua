-- An operator sends a study's dead-lettered deliveries again (`radgridctl critical retry`):
-- each starts over with a fresh set of attempts.
-- KEYS: the module's; KEYS[9…] the study's result hashes.
-- ARGV: the module's 4, then NA+1 study.
-- Returns the number of deliveries moved back.
--#include _critical
local study = ARGV[NA + 1]
local moved = 0
for i = K.first_result, #KEYS do
  local key = KEYS[i]
  local f = redis.call('HMGET', key, 'state', 'source', 'id')
  if f[1] and f[1] ~= 'acknowledged' then
    local member = f[2] .. ':' .. study
    for level = 0, 2 do
      local d = 'd' .. level .. '_'
      if redis.call('HGET', key, d .. 'state') == 'dead' then
        redis.call('HSET', key, d .. 'state', 'pending', d .. 'attempts', 0, d .. 'error', '')
        redis.call('HDEL', key, d .. 'lease', d .. 'at')
        redis.call('ZREM', K.dead, member .. '|' .. level)
        redis.call('ZADD', K.deliveries, NOW, member .. '|' .. level)
        if level == 0 and f[1] == 'dead' then redis.call('HSET', key, 'state', 'notifying') end
        audit('critical.retried', study, 'result=' .. f[3] .. ';level=' .. level)
        moved = moved + 1
      end
    end
  end
end
return moved
