-- Claims due deliveries for one notifier: each is leased (its due time moves to the lease's
-- end, so a notifier that dies mid-delivery hands it on) and fenced by the claim's token, so
-- a late outcome from a lost lease is ignored. The attempt is counted here, so deliveries
-- that crash their notifier also run out of attempts.
-- KEYS: the module's (no result hashes).
-- ARGV: the module's 4, then NA+1 lease ms, +2 most to claim, +3 token, +4 max attempts.
-- Returns {{entry, level, attempt, id, study, case, site, source, priority, raised, state}, ...}.
--#include _critical
local lease, limit, token, max_attempts = tonumber(ARGV[NA + 1]), tonumber(ARGV[NA + 2]), ARGV[NA + 3], tonumber(ARGV[NA + 4])
local due = redis.call('ZRANGEBYSCORE', K.deliveries, '-inf', NOW, 'LIMIT', 0, limit)
local claimed = {}
for _, entry in ipairs(due) do
  local member, level = split_delivery(entry)
  local f = member and redis.call('HMGET', result_key(member), 'state', 'd' .. level .. '_state', 'd' .. level .. '_attempts',
                                  'id', 'study', 'case', 'site', 'source', 'priority', 'raised')
  if not f or not f[1] or f[1] == 'acknowledged' or f[2] ~= 'pending' then
    redis.call('ZREM', K.deliveries, entry)  -- nothing left to deliver
  elseif tonumber(f[3] or '0') >= max_attempts then
    -- Every attempt was claimed and none reported back (notifiers died): give up as a failure would.
    local key = result_key(member)
    redis.call('HSET', key, 'd' .. level .. '_state', 'dead', 'd' .. level .. '_at', NOW, 'd' .. level .. '_error', 'critical.leaseExpired')
    redis.call('HDEL', key, 'd' .. level .. '_lease')
    if level == '0' and f[1] == 'notifying' then redis.call('HSET', key, 'state', 'dead') end
    redis.call('ZREM', K.deliveries, entry)
    redis.call('ZADD', K.dead, NOW, entry)
    audit('critical.deadLettered', f[5], 'result=' .. f[4] .. ';level=' .. level .. ';attempts=' .. f[3] .. ';error=critical.leaseExpired')
  else
    local key = result_key(member)
    local attempt = redis.call('HINCRBY', key, 'd' .. level .. '_attempts', 1)
    redis.call('HSET', key, 'd' .. level .. '_lease', token)
    redis.call('ZADD', K.deliveries, NOW + lease, entry)
    claimed[#claimed + 1] = {entry, level, attempt, f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[1]}
  end
end
return claimed
