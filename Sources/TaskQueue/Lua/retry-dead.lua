-- Re-enqueues a dead letter with fresh counters, outside its fan-in group (the group counted
-- the member down when it died), and deletes the dead-letter entry.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: dead-letter entry id.
-- Returns the enqueue reply ({1, entry id} new, {0, status} known) or {-2, 'missing'}.
--#include _records
local entry = redis.call('XRANGE', K.dead, ARGV[1], ARGV[1])[1]
if not entry then return {-2, 'missing'} end
local dead = {}
local fields = entry[2]
for j = 1, #fields, 2 do dead[fields[j]] = fields[j + 1] end
local lane = 3
for i = 1, 4 do if lane_name(i) == dead.lane then lane = i end end
local r = enqueue(dead.key, dead.payload or '', lane, tonumber(dead.max_attempts or 5), '', now_ms(), false)
redis.call('XDEL', K.dead, ARGV[1])
return r
