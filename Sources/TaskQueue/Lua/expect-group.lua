-- Creates a fan-in group: when `count` member tasks (enqueued with this group id) have
-- completed, the completion of the last one enqueues the next task, exactly once.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: group id, expected count, then the next task: key, payload, lane index, max attempts,
--   group id ('' when none).
-- Returns 1 created, 0 the group exists already (nothing changes), 2 the count was 0 so the
--   next task was enqueued at once.
--#include _records
local group, count = ARGV[1], tonumber(ARGV[2])
local next_key, next_payload, next_lane, next_max_attempts, next_group = ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
if redis.call('HEXISTS', K.groups, group) == 1 then return 0 end
local now = now_ms()
if count <= 0 then
  enqueue(next_key, next_payload, next_lane, next_max_attempts, next_group, now, false)
  return 2
end
-- The group record (format in _records.lua).
redis.call('HSET', K.groups, group, cmsgpack.pack({next_key, next_payload, next_lane, next_max_attempts, next_group}))
redis.call('HSET', K.groups_left, group, ARGV[2])
redis.call('ZADD', K.groups_age, now, group)
return 1
