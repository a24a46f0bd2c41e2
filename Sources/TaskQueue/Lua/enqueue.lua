-- Idempotent enqueue of a batch of tasks (the client sends up to 100 per call).
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: n, then per task 5 values: key, payload, lane index (1 stat … 4 bulk), max attempts,
--   fan-in group id ('' when none).
-- Returns one value per task: its new entry id; '=' and its status letter (q, r, d or c) when
--   the key is already known (also for a key repeated within the batch); '!' when its fan-in
--   group does not exist.
-- One HMGET for the idempotency check and one HSET for all new records.
--#include _records
local n = tonumber(ARGV[1])
local first_enqueue = ' ' .. string.format('%d', now_ms())
local keys = {}
for j = 1, n do keys[j] = ARGV[2 + (j - 1) * 5] end
local known = redis.call('HMGET', K.state, unpack(keys))
local fresh, group_exists, writes, out = {}, {}, {}, {}
local w, last_max_attempts, meta = 0, nil, nil
for j = 1, n do
  local a = 2 + (j - 1) * 5
  local key, group = ARGV[a], ARGV[a + 4]
  if known[j] then
    out[j] = '=' .. status_of(decode(known[j]))
  elseif fresh[key] then
    out[j] = '=q'
  else
    if group ~= '' and group_exists[group] == nil then group_exists[group] = redis.call('HEXISTS', K.groups, group) == 1 end
    if group ~= '' and not group_exists[group] then
      out[j] = '!'
    else
      local lane, max_attempts = ARGV[a + 2], ARGV[a + 3]
      -- Tasks of one batch mostly share their max attempts: build the meta text once (the
      -- text of meta_text() for a first delivery, from the arguments as sent).
      if max_attempts ~= last_max_attempts then last_max_attempts, meta = max_attempts, '1 0 ' .. max_attempts .. first_enqueue end
      local id = append(tonumber(lane), key, ARGV[a + 1], meta, group)
      fresh[key] = true
      writes[w + 1] = key
      writes[w + 2] = 'q ' .. id .. ' ' .. lane
      w = w + 2
      out[j] = id
    end
  end
end
if w > 0 then redis.call('HSET', K.state, unpack(writes)) end
return out
