-- What the queue remembers about one task.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: task key.
-- Returns its status letter: q queued, r claimed (running), d delayed for a retry, c completed;
--   '' when unknown.
--#include _records
local rec = load(ARGV[1])
if not rec then return '' end
return status_of(rec)
