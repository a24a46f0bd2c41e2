-- Keeps a study's compressed instances past its report while QC reads it again, and lets
-- them go after. delete-blobs.lua defers (and marks `blobsDeferred`) while `blobHold` is set.
-- KEYS: 1-4 (see _study), then the blob keys (release only)
-- ARGV: 1 actor, 2 hold | release, 3 reason (hold: second-read | dispute)
-- Returns {'held' | 'released', blobs deleted now} or {'unknown', 0}.
--#include _study
local uid = redis.call('HGET', K_RECORD, 'uid')
if not uid then return {'unknown', 0} end
if ARGV[2] == 'hold' then
  if redis.call('HGET', K_RECORD, 'blobHold') ~= '1' then
    redis.call('HSET', K_RECORD, 'blobHold', '1')
    audit(ARGV[1], 'study.blobsHeld', uid, 'reason=' .. ARGV[3] .. ';deleted=' .. (redis.call('HGET', K_RECORD, 'blobsDeleted') or '0'))
  end
  return {'held', 0}
end
redis.call('HDEL', K_RECORD, 'blobHold')
local deleted = 0
if redis.call('HGET', K_RECORD, 'blobsDeferred') == '1' then
  if #KEYS > 4 then deleted = redis.call('UNLINK', unpack(KEYS, 5)) end
  redis.call('HDEL', K_RECORD, 'blobsDeferred')
  redis.call('HSET', K_RECORD, 'blobsDeleted', '1')
  audit(ARGV[1], 'study.blobsDeleted', uid, 'instances=' .. deleted .. ';after=qc')
end
return {'released', deleted}
