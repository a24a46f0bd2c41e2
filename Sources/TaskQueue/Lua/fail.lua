-- A handler failed: counts the failure and ends the delivery (fenced: only the current claim
-- may do this). The task then waits in its lane's delayed set for a retry, or is dead-lettered
-- when it may not be retried (negative delay) or has used up its attempts.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: key, fence, error text, delay ms (negative = do not retry), dead-letter cap, reason
--   recorded when dead-lettered without retry.
-- Returns {1, due ms} retrying, {2} dead-lettered, {0, reason} refused (unknown, fenced,
--   state-<status>).
--#include _records
local key, fence, err, delay = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local rec = load(key)
if not rec then return {0, 'unknown'} end
if rec.fence ~= fence then return {0, 'fenced'} end
if rec.status ~= 'q' then return {0, 'state-' .. rec.status} end
local now = now_ms()
rec.deliveries = rec.deliveries + 1
rec.failures = rec.failures + 1
unlink(rec)
if delay < 0 or rec.failures >= rec.max_attempts then
  local reason = ARGV[6]
  if delay >= 0 then reason = 'attempts-exhausted' end
  dead_letter(key, rec, reason, err, tonumber(ARGV[5]), now)
  return {2}
end
rec.status = 'd'
save(key, rec)
redis.call('ZADD', K.delayed[rec.lane], now + delay, key)
return {1, now + delay}
