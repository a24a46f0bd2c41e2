-- KEYS: study, instances, blob, audit log, audit head, audit study index.
-- ARGV: site, sop, series, modality, bodyPart, priority, rawSize, sha256, blob, storedSize.
-- Returns {outcome, state, instances} with outcome stored | duplicate | late | forbidden.
--#include _audit
local study, instances, blob = KEYS[1], KEYS[2], KEYS[3]
local site, sop = ARGV[1], ARGV[2]
local owner = redis.call('HGET', study, 'site')
if owner and owner ~= site then return {'forbidden', '', '0'} end
if redis.call('HEXISTS', instances, sop) == 1 then
  return {'duplicate', redis.call('HGET', study, 'state'), tostring(redis.call('HGET', study, 'instances'))}
end
local now = redis.call('TIME')
local ms = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local uid = string.match(study, '{s:(.*)}')
if not owner then
  redis.call('HSET', study, 'uid', uid, 'site', site, 'state', 'received', 'priority', ARGV[6],
             'createdAt', ms, 'committed', '0', 'instances', '0', 'rawBytes', '0', 'storedBytes', '0',
             'late', '0', 'modality', ARGV[4], 'bodyPart', ARGV[5])
  rg_audit_append(KEYS[4], KEYS[5], KEYS[6], 'site:' .. site, 'study.received', uid, 'priority=' .. ARGV[6])
end
redis.call('SET', blob, ARGV[9])
redis.call('HSET', instances, sop, ARGV[3] .. '|' .. ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[4])
local count = redis.call('HINCRBY', study, 'instances', 1)
redis.call('HINCRBY', study, 'rawBytes', ARGV[7])
redis.call('HINCRBY', study, 'storedBytes', ARGV[10])
redis.call('HSET', study, 'lastInstanceAt', ms, 'updatedAt', ms)
if redis.call('HGET', study, 'bodyPart') == '' and ARGV[5] ~= '' then redis.call('HSET', study, 'bodyPart', ARGV[5]) end
local outcome = 'stored'
if redis.call('HGET', study, 'committed') == '1' then
  outcome = 'late'
  redis.call('HINCRBY', study, 'late', 1)
  rg_audit_append(KEYS[4], KEYS[5], KEYS[6], 'site:' .. site, 'instance.late', uid, 'sop=' .. sop)
else
  rg_audit_append(KEYS[4], KEYS[5], KEYS[6], 'site:' .. site, 'instance.stored', uid, 'sop=' .. sop .. ' bytes=' .. ARGV[7])
end
return {outcome, redis.call('HGET', study, 'state'), tostring(count)}
