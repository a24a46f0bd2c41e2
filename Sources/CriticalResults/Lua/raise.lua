-- Raises a critical result, once per study and source: a second call (a retried signature, a
-- repeated hand-off) changes nothing and notifies no one again.
-- The escalation timer starts due at once: the notifiers' first pass schedules it from their
-- policy (escalate.lua), so whoever raises (portal, coordinator) needs no policy.
-- KEYS: the module's (see _critical.lua); KEYS[9] the result hash.
-- ARGV: the module's 4, then NA+1 result id, +2 study, +3 case ('' none), +4 site, +5 source,
--   +6 priority.
-- Returns {'raised', state} or {'exists', state}.
--#include _critical
local key = KEYS[K.first_result]
local id, study, case_id, site = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3], ARGV[NA + 4]
local source, priority = ARGV[NA + 5], ARGV[NA + 6]
local existing = redis.call('HGET', key, 'state')
if existing then return {'exists', existing} end
local member = source .. ':' .. study
redis.call('HSET', key, 'id', id, 'study', study, 'case', case_id, 'site', site, 'source', source,
           'priority', priority, 'raised', NOW, 'state', 'notifying', 'level', 0, 'escalate_at', 0,
           'd0_state', 'pending', 'd0_attempts', 0)
redis.call('ZADD', K.open, NOW, member)
redis.call('ZADD', K.deliveries, NOW, member .. '|0')
redis.call('ZADD', K.timers, NOW, member)
audit('critical.raised', study, 'result=' .. id .. ';source=' .. source .. ';priority=' .. priority .. ';site=' .. site)
return {'raised', 'notifying'}
