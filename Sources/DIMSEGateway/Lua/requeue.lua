-- Sends a dead-lettered job again (radgridctl dimse retry): attempts start over.
-- KEYS: 1 due (zset), 2 dead (zset), 3 job (hash).
-- ARGV: 1 now ms.
-- Returns 1 when requeued, 0 when the job is not dead.
local due, dead, job = KEYS[1], KEYS[2], KEYS[3]
if redis.call('ZSCORE', dead, job) == false then return 0 end
redis.call('ZREM', dead, job)
redis.call('HSET', job, 'state', 'pending', 'attempts', 0)
redis.call('HDEL', job, 'lease')
redis.call('ZADD', due, tonumber(ARGV[1]), job)
return 1
