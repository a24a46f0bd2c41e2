-- A site acknowledges the critical results of one of its studies: who, how, when. Ends every
-- pending delivery and escalation; the result expires after the retention. Idempotent: a
-- repeated acknowledgement keeps the first one's record.
-- KEYS: the module's; KEYS[9…] the study's result hashes (one per source).
-- ARGV: the module's 4, then NA+1 study, +2 site, +3 by, +4 method, +5 retention ms (used when
--   no notifier has recorded its policy's).
-- Returns {'ok', newly acknowledged count} or {'notFound'} (no result, or another site's: the
-- caller must not tell which).
--#include _critical
local study, site, by, method = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3], ARGV[NA + 4]
local retention = tonumber(redis.call('HGET', K.policy, 'retention_ms') or ARGV[NA + 5])
local found, newly = 0, 0
for i = K.first_result, #KEYS do
  local key = KEYS[i]
  local f = redis.call('HMGET', key, 'state', 'site', 'source', 'id')
  if f[1] and f[2] == site then
    found = found + 1
    if f[1] ~= 'acknowledged' then
      newly = newly + 1
      local member = f[3] .. ':' .. study
      redis.call('HSET', key, 'state', 'acknowledged', 'ack_by', by, 'ack_method', method, 'ack_at', NOW, 'escalate_at', 0)
      for level = 0, 2 do
        local d = 'd' .. level .. '_'
        if redis.call('HGET', key, d .. 'state') == 'pending' then
          redis.call('HSET', key, d .. 'state', 'cancelled')
          redis.call('HDEL', key, d .. 'lease')
        end
        redis.call('ZREM', K.deliveries, member .. '|' .. level)
        redis.call('ZREM', K.dead, member .. '|' .. level)
      end
      redis.call('ZREM', K.open, member)
      redis.call('ZREM', K.timers, member)
      redis.call('ZADD', K.acked, NOW + retention, member)
      redis.call('PEXPIRE', key, retention)
      audit('critical.acknowledged', study, 'result=' .. f[4] .. ';site=' .. site .. ';method=' .. method .. ';by=' .. by)
    end
  end
end
if found == 0 then return {'notFound'} end
return {'ok', newly}
