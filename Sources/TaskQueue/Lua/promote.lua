-- Moves due retries from the delayed sets back to their lanes, as new deliveries.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: limit per lane.
-- Returns {promoted, now ms, next due ms or -1}.
--#include _records
local limit = tonumber(ARGV[1])
local now = now_ms()
local promoted = 0
local next_due = -1
for i = 1, 4 do
  local delayed = K.delayed[i]
  local due = redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, limit)
  for _, key in ipairs(due) do
    redis.call('ZREM', delayed, key)
    local rec = load(key)
    if rec and rec.status == 'd' then
      push(key, rec)
      promoted = promoted + 1
    end
  end
  local _, first_score = unpack(redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES'))
  if first_score then
    local s = tonumber(first_score)
    if next_due < 0 or s < next_due then next_due = s end
  end
end
return {promoted, now, next_due}
