-- Hand-back on shutdown: each task goes back to its lane at once as a new delivery (fenced;
-- the hand-back does not count against the poison limit).
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: per task: key, fence.
-- Returns the number of tasks handed back.
--#include _records
local count = 0
for j = 1, #ARGV, 2 do
  local key, fence = ARGV[j], ARGV[j + 1]
  local rec = load(key)
  if rec and rec.status == 'q' and rec.fence == fence then
    unlink(rec)
    push(key, rec)
    count = count + 1
  end
end
return count
