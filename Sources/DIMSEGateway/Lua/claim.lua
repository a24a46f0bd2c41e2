-- Claims due jobs for one sender: each is leased (its due time moves to the lease's end, so a
-- sender that dies mid-send hands it on) and fenced by the claim's token. The attempt is
-- counted here, so a job that crashes its sender also runs out of attempts.
-- KEYS: 1 due (zset), 2 dead (zset).
-- ARGV: 1 now ms, 2 lease ms, 3 most to claim, 4 token, 5 max attempts.
-- Returns {{job, kind, study, site, version, attempt}, ...}.
local due, dead = KEYS[1], KEYS[2]
local now, lease, limit, token, max_attempts = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5])
local claimed = {}
for _, job in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', now, 'LIMIT', 0, limit)) do
  local f = redis.call('HMGET', job, 'kind', 'study', 'site', 'version', 'attempts', 'state')
  if not f[1] or f[6] ~= 'pending' then
    redis.call('ZREM', due, job)  -- sent, dead or gone
  elseif tonumber(f[5]) >= max_attempts then
    redis.call('HSET', job, 'state', 'dead', 'error', 'dimse.leaseExpired', 'at', now)
    redis.call('HDEL', job, 'lease')
    redis.call('ZREM', due, job)
    redis.call('ZADD', dead, now, job)
  else
    local attempt = redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('HSET', job, 'lease', token)
    redis.call('ZADD', due, now + lease, job)
    claimed[#claimed + 1] = {job, f[1], f[2], f[3], f[4], attempt}
  end
end
return claimed
