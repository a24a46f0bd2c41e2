-- The sweeper's claim: studies due now, each pushed `lease` into the future so the other
-- coordinators skip it while this one looks (a crashed sweeper's claim simply comes due again).
-- KEYS: 1 the due index (zset uid -> ms)
-- ARGV: 1 limit, 2 lease ms
-- Returns the claimed uids.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGE', KEYS[1], '-inf', now, 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]))
for _, uid in ipairs(due) do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), uid) end
return due
