-- Retention: deletes a study's compressed instances and marks the record (no version bump:
-- the state machine only reads the flag). While QC holds them (`blobHold`), defers instead.
-- KEYS: 1-4 (see _study), then the blob keys
-- ARGV: 1 actor
-- Returns the number of blobs deleted.
--#include _study
if not redis.call('HGET', K_RECORD, 'state') then return 0 end
-- QC is reading the study again: keep the images until blob-hold.lua releases them.
if redis.call('HGET', K_RECORD, 'blobHold') == '1' then
  if redis.call('HGET', K_RECORD, 'blobsDeferred') ~= '1' then
    redis.call('HSET', K_RECORD, 'blobsDeferred', '1')
    audit(ARGV[1], 'study.blobsKept', redis.call('HGET', K_RECORD, 'uid'), 'until=qc')
  end
  return 0
end
local deleted = 0
if #KEYS > 4 then deleted = redis.call('UNLINK', unpack(KEYS, 5)) end
if redis.call('HGET', K_RECORD, 'blobsDeleted') ~= '1' then
  redis.call('HSET', K_RECORD, 'blobsDeleted', '1')
  audit(ARGV[1], 'study.blobsDeleted', redis.call('HGET', K_RECORD, 'uid'), 'instances=' .. deleted)
end
return deleted
