-- Records the outcome of one claimed delivery. Delivered: done (the result is `delivered` when
-- it was the site's own notification). Failed: retried after a doubling backoff, or dead-
-- lettered after the last attempt (a dead result stays open and still escalates).
-- KEYS: the module's (no result hashes).
-- ARGV: the module's 4, then NA+1 entry ('member|level'), +2 claim token, +3 outcome (ok | fail),
--   +4 error code (no patient data), +5 first backoff ms, +6 longest backoff ms, +7 max attempts.
-- Returns {'delivered'}, {'retry', due ms}, {'dead'}, {'stale'} (the lease was lost, or the
-- result was acknowledged meanwhile) or {'gone'}.
--#include _critical
local entry, token, outcome, err = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3], ARGV[NA + 4]
local first_backoff, longest_backoff, max_attempts = tonumber(ARGV[NA + 5]), tonumber(ARGV[NA + 6]), tonumber(ARGV[NA + 7])
local member, level = split_delivery(entry)
if not member then return {'gone'} end
local key = result_key(member)
local d = 'd' .. level .. '_'
local f = redis.call('HMGET', key, 'state', d .. 'lease', d .. 'attempts', 'study', 'id')
if not f[1] then
  redis.call('ZREM', K.deliveries, entry)
  return {'gone'}
end
if f[2] ~= token then return {'stale'} end
redis.call('HDEL', key, d .. 'lease')
local attempts = tonumber(f[3] or '0')
if outcome == 'ok' then
  redis.call('HSET', key, d .. 'state', 'delivered', d .. 'at', NOW, d .. 'error', '')
  if level == '0' and (f[1] == 'notifying' or f[1] == 'dead') then redis.call('HSET', key, 'state', 'delivered') end
  redis.call('ZREM', K.deliveries, entry)
  audit('critical.delivered', f[4], 'result=' .. f[5] .. ';level=' .. level .. ';attempt=' .. attempts)
  return {'delivered'}
end
redis.call('HSET', key, d .. 'error', err)
if attempts >= max_attempts then
  redis.call('HSET', key, d .. 'state', 'dead', d .. 'at', NOW)
  if level == '0' and f[1] == 'notifying' then redis.call('HSET', key, 'state', 'dead') end
  redis.call('ZREM', K.deliveries, entry)
  redis.call('ZADD', K.dead, NOW, entry)
  audit('critical.deadLettered', f[4], 'result=' .. f[5] .. ';level=' .. level .. ';attempts=' .. attempts .. ';error=' .. err)
  return {'dead'}
end
-- first * 2^(attempts-1), at most the longest.
local delay = math.min(longest_backoff, first_backoff * math.pow(2, math.max(0, attempts - 1)))
local due = NOW + math.floor(delay)
redis.call('ZADD', K.deliveries, due, entry)
audit('critical.deliveryFailed', f[4], 'result=' .. f[5] .. ';level=' .. level .. ';attempt=' .. attempts .. ';retryAt=' .. due .. ';error=' .. err)
return {'retry', due}
