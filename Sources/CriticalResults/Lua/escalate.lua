-- Escalates unacknowledged results whose time has come, one level per result and call: level 1
-- notifies the site's second contact `after[priority]` after the result was raised, level 2 the
-- grid's admins `admins_after` after that. The level is checked and raised in the same script,
-- so each level happens once however many notifiers run. A timer that is not yet due (a new
-- result, or a policy with longer times) is moved to its due time. Also prunes the
-- acknowledged index of results past their retention, and records the policy's retention for
-- the acknowledgements (ack.lua).
-- KEYS: the module's (no result hashes).
-- ARGV: the module's 4, then NA+1 most to escalate, +2…+5 ms to the first escalation for stat,
--   urgent, routine, bulk, +6 ms from the first to the second, +7 retention ms.
-- Returns {{member, level}, ...}.
--#include _critical
local limit = tonumber(ARGV[NA + 1])
local after = {stat = tonumber(ARGV[NA + 2]), urgent = tonumber(ARGV[NA + 3]), routine = tonumber(ARGV[NA + 4]), bulk = tonumber(ARGV[NA + 5])}
local admins_after = tonumber(ARGV[NA + 6])
redis.call('HSET', K.policy, 'retention_ms', ARGV[NA + 7])
redis.call('ZREMRANGEBYSCORE', K.acked, '-inf', NOW)
local due = redis.call('ZRANGEBYSCORE', K.timers, '-inf', NOW, 'LIMIT', 0, limit)
local escalated = {}
for _, member in ipairs(due) do
  local key = result_key(member)
  local f = redis.call('HMGET', key, 'state', 'level', 'priority', 'raised', 'escalated1_at', 'study', 'id', 'site')
  local level = tonumber(f[2] or '0')
  if not f[1] or f[1] == 'acknowledged' or level >= 2 then
    redis.call('ZREM', K.timers, member)
  else
    local at
    if level == 0 then
      at = tonumber(f[4]) + (after[f[3]] or after.routine)
    else
      at = tonumber(f[5] or f[4]) + admins_after
    end
    if at > NOW then
      redis.call('ZADD', K.timers, at, member)
      redis.call('HSET', key, 'escalate_at', at)
    else
      level = level + 1
      local d = 'd' .. level .. '_'
      redis.call('HSET', key, 'level', level, d .. 'state', 'pending', d .. 'attempts', 0)
      redis.call('ZADD', K.deliveries, NOW, member .. '|' .. level)
      if level == 1 then
        redis.call('HSET', key, 'escalated1_at', NOW, 'escalate_at', NOW + admins_after)
        redis.call('ZADD', K.timers, NOW + admins_after, member)
      else
        redis.call('HSET', key, 'escalate_at', 0)
        redis.call('ZREM', K.timers, member)
      end
      local to = level == 1 and 'secondContact' or 'admins'
      audit('critical.escalated', f[6], 'result=' .. f[7] .. ';level=' .. level .. ';to=' .. to .. ';site=' .. f[8])
      escalated[#escalated + 1] = {member, level}
    end
  end
end
return escalated
