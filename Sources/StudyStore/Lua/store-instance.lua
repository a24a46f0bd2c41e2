-- Stores one compressed instance; resending the same SOP instance changes nothing.
-- The audit entries' hashes are computed by the caller (a SHA-256 in Lua would cost more than
-- the rest of the intake): the caller states what it believes the chain's head is and whether
-- the study exists and is committed (that decides the entries it hashed); when any of that
-- is no longer so, nothing is written and the script answers `retry` with the facts.
-- KEYS: 1-4 (see _study), 5 instance index (hash sop -> series|bytes|sha256|modality), 6 the blob
-- ARGV: 1 site, 2 sop, 3 series, 4 modality, 5 body part, 6 priority, 7 raw size, 8 sha256,
--       9 compressed bytes, 10 stored size, 11 expected audit head, 12 entry time (ms),
--       13 hash of the study.received entry ('' when the study is expected to exist),
--       14 hash of the instance entry, 15 expected committed flag ('0' or '1'),
--       16 the site's consent reference for this upload ('' for none),
--       17 the StudyInstanceUID the site sent when the study is kept under another key ('' otherwise)
-- Returns {outcome, state, instances}: outcome stored | duplicate | late | forbidden, or
-- {'retry', head, exists '0'/'1', committed '0'/'1'}.
--#include _study
local K_INSTANCES, K_BLOB = KEYS[5], KEYS[6]
local site, sop = ARGV[1], ARGV[2]
local owner = redis.call('HGET', K_RECORD, 'site')
if owner and owner ~= site then return {'forbidden', '', '0'} end
if redis.call('HEXISTS', K_INSTANCES, sop) == 1 then
  return {'duplicate', redis.call('HGET', K_RECORD, 'state'), tostring(redis.call('HGET', K_RECORD, 'instances'))}
end
local head = redis.call('GET', K_AUDIT_HEAD) or string.rep('0', 64)
local committed = owner and redis.call('HGET', K_RECORD, 'committed') == '1'
local exists_flag, committed_flag = owner and '1' or '0', committed and '1' or '0'
if head ~= ARGV[11] or (ARGV[13] == '') ~= (owner ~= nil and owner ~= false) or committed_flag ~= ARGV[15] then
  return {'retry', head, exists_flag, committed_flag}
end
local ms = tostring(now_ms())
local uid = string.match(K_RECORD, '{s:(.*)}')
local actor, ts = 'site:' .. site, ARGV[12]
local prev = head
if not owner then
  redis.call('HSET', K_RECORD, 'uid', uid, 'site', site, 'state', 'received', 'v', '1', 'gen', '0', 'recov', '0',
             'priority', ARGV[6], 'createdAt', ms, 'updatedAt', ms, 'committed', '0', 'instances', '0', 'rawBytes', '0',
             'storedBytes', '0', 'late', '0', 'modality', ARGV[4], 'bodyPart', ARGV[5], 'blobsDeleted', '0')
  if ARGV[17] ~= '' then redis.call('HSET', K_RECORD, 'dicomStudy', ARGV[17]) end
  rg_audit_put(K_AUDIT_LOG, K_AUDIT_HEAD, K_AUDIT_INDEX, prev, ts, actor, 'study.received', uid, 'priority=' .. ARGV[6], ARGV[13])
  prev = ARGV[13]
end
if ARGV[16] ~= '' and not redis.call('HGET', K_RECORD, 'consent') then redis.call('HSET', K_RECORD, 'consent', ARGV[16]) end
redis.call('SET', K_BLOB, ARGV[9])
redis.call('HSET', K_INSTANCES, sop, ARGV[3] .. '|' .. ARGV[7] .. '|' .. ARGV[8] .. '|' .. ARGV[4])
local count = redis.call('HINCRBY', K_RECORD, 'instances', 1)
redis.call('HINCRBY', K_RECORD, 'rawBytes', ARGV[7])
redis.call('HINCRBY', K_RECORD, 'storedBytes', ARGV[10])
redis.call('HSET', K_RECORD, 'lastInstanceAt', ms)
if redis.call('HGET', K_RECORD, 'bodyPart') == '' and ARGV[5] ~= '' then redis.call('HSET', K_RECORD, 'bodyPart', ARGV[5]) end
if redis.call('HGET', K_RECORD, 'modality') == '' and ARGV[4] ~= '' then redis.call('HSET', K_RECORD, 'modality', ARGV[4]) end
local outcome = 'stored'
if committed then
  outcome = 'late'
  redis.call('HINCRBY', K_RECORD, 'late', 1)
  rg_audit_put(K_AUDIT_LOG, K_AUDIT_HEAD, K_AUDIT_INDEX, prev, ts, actor, 'instance.late', uid, 'sop=' .. sop, ARGV[14])
else
  rg_audit_put(K_AUDIT_LOG, K_AUDIT_HEAD, K_AUDIT_INDEX, prev, ts, actor, 'instance.stored', uid, 'sop=' .. sop .. ' bytes=' .. ARGV[7], ARGV[14])
end
return {outcome, redis.call('HGET', K_RECORD, 'state'), tostring(count)}
