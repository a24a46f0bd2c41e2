-- KEYS: study, audit log, audit head, audit study index. ARGV: actor, reason, site ('' = any).
-- Returns {outcome, instances} with outcome committed | already | unknown | forbidden.
--#include _audit
local study = KEYS[1]
local owner = redis.call('HGET', study, 'site')
if not owner then return {'unknown', '0'} end
if ARGV[3] ~= '' and owner ~= ARGV[3] then return {'forbidden', '0'} end
local count = redis.call('HGET', study, 'instances')
if redis.call('HGET', study, 'committed') == '1' then return {'already', count} end
local now = redis.call('TIME')
local ms = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('HSET', study, 'committed', '1', 'committedAt', ms, 'updatedAt', ms)
local uid = redis.call('HGET', study, 'uid')
rg_audit_append(KEYS[2], KEYS[3], KEYS[4], ARGV[1], 'study.committed', uid, 'instances=' .. count .. ' reason=' .. ARGV[2])
return {'committed', count}
