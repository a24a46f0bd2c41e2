-- Retention: drops a study's record, instance index, outcomes and any blobs left, with an
-- audit entry (the audit chain itself is kept: it is archived, not expired).
-- KEYS: 1-4 (see _study), 5 instance index, 6 outcomes, 7 thumbnails, 8 report, then the blob keys
-- ARGV: 1 actor
-- Returns 1 when the record existed.
--#include _study
local uid = redis.call('HGET', K_RECORD, 'uid')
if not uid then return 0 end
local state = redis.call('HGET', K_RECORD, 'state')
redis.call('UNLINK', unpack(KEYS, 5))
redis.call('UNLINK', K_RECORD)
audit(ARGV[1], 'study.expired', uid, 'state=' .. state)
return 1
