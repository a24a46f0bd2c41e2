-- Stores one compressed instance; resending the same SOP instance changes nothing.
-- KEYS: 1-4 (see _study), 5 instance index (hash sop -> series|bytes|sha256|modality), 6 the blob
-- ARGV: 1 site, 2 sop, 3 series, 4 modality, 5 body part, 6 priority, 7 raw size, 8 sha256,
--       9 compressed bytes, 10 stored size
-- Returns {outcome, state, instances}: outcome stored | duplicate | late | forbidden.
--#include _study
local K_INSTANCES, K_BLOB = KEYS[5], KEYS[6]
local site, sop = ARGV[1], ARGV[2]
local owner = redis.call('HGET', K_RECORD, 'site')
if owner and owner ~= site then return {'forbidden', '', '0'} end
if redis.call('HEXISTS', K_INSTANCES, sop) == 1 then
  return {'duplicate', redis.call('HGET', K_RECORD, 'state'), tostring(redis.call('HGET', K_RECORD, 'instances'))}
end
local ms = tostring(now_ms())
local uid = string.match(K_RECORD, '{s:(.*)}')
if not owner then
  redis.call('HSET', K_RECORD, 'uid', uid, 'site', site, 'state', 'received', 'v', '1', 'gen', '0', 'recov', '0',
             'priority', ARGV[6], 'createdAt', ms, 'updatedAt', ms, 'committed', '0', 'instances', '0', 'rawBytes', '0',
             'storedBytes', '0', 'late', '0', 'modality', ARGV[4], 'bodyPart', ARGV[5], 'blobsDeleted', '0')
  audit('site:' .. site, 'study.received', uid, 'priority=' .. ARGV[6])
end
redis.call('SET', K_BLOB, ARGV[9])
redis.call('HSET', K_INSTANCES, sop, ARGV[3] .. '|' .. ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[4])
local count = redis.call('HINCRBY', K_RECORD, 'instances', 1)
redis.call('HINCRBY', K_RECORD, 'rawBytes', ARGV[7])
redis.call('HINCRBY', K_RECORD, 'storedBytes', ARGV[10])
redis.call('HSET', K_RECORD, 'lastInstanceAt', ms)
if redis.call('HGET', K_RECORD, 'bodyPart') == '' and ARGV[5] ~= '' then redis.call('HSET', K_RECORD, 'bodyPart', ARGV[5]) end
if redis.call('HGET', K_RECORD, 'modality') == '' and ARGV[4] ~= '' then redis.call('HSET', K_RECORD, 'modality', ARGV[4]) end
local outcome = 'stored'
if redis.call('HGET', K_RECORD, 'committed') == '1' then
  outcome = 'late'
  redis.call('HINCRBY', K_RECORD, 'late', 1)
  audit('site:' .. site, 'instance.late', uid, 'sop=' .. sop)
else
  audit('site:' .. site, 'instance.stored', uid, 'sop=' .. sop .. ' bytes=' .. ARGV[7])
end
return {outcome, redis.call('HGET', K_RECORD, 'state'), tostring(count)}
