-- Records what one send did, if the caller still holds the job's lease: `sent` deletes the
-- job, `retry` schedules it again, `dead` parks it in the dead set (radgridctl dimse retry).
-- KEYS: 1 due (zset), 2 dead (zset), 3 job (hash).
-- ARGV: 1 now ms, 2 token, 3 outcome (sent|retry|dead), 4 next due ms (retry), 5 error code.
-- Returns 1 when recorded, 0 when the lease was lost (another sender owns the job now).
local due, dead, job = KEYS[1], KEYS[2], KEYS[3]
local now, token, outcome, next_due, err = tonumber(ARGV[1]), ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
if redis.call('HGET', job, 'lease') ~= token then return 0 end
if outcome == 'sent' then
  redis.call('DEL', job)
  redis.call('ZREM', due, job)
elseif outcome == 'retry' then
  redis.call('HSET', job, 'error', err, 'at', now)
  redis.call('HDEL', job, 'lease')
  redis.call('ZADD', due, next_due, job)
else
  redis.call('HSET', job, 'state', 'dead', 'error', err, 'at', now)
  redis.call('HDEL', job, 'lease')
  redis.call('ZREM', due, job)
  redis.call('ZADD', dead, now, job)
end
return 1
