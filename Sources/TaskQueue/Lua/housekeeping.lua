-- Prunes what would otherwise grow: completion tombstones past the idempotency window, fan-in
-- groups past their TTL, dead letters past retention, departed consumers (idle, nothing
-- pending), and the acknowledged heads of the lanes.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: completed retention ms, group ttl ms, dead-letter retention ms, consumer idle ms, limit.
-- Returns {tombstones pruned, groups dropped, consumers deleted}.
--#include _records
local done_retention, group_ttl, dead_retention = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local consumer_idle, limit = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local pruned, groups, consumers = 0, 0, 0
-- The completion log is in completion order: prune from its head until a tombstone is still
-- inside the window. Entries whose record is no longer a tombstone are dropped.
local cutoff = now - done_retention
local head = redis.call('LRANGE', K.done, 0, limit - 1)
local popped = 0
for _, key in ipairs(head) do
  local rec = load(key)
  if rec and rec.status == 'c' then
    if (rec.completed_ms or 0) > cutoff then break end
    redis.call('HDEL', K.state, key)
    pruned = pruned + 1
  end
  popped = popped + 1
end
if popped > 0 then redis.call('LTRIM', K.done, popped, -1) end
for _, group in ipairs(redis.call('ZRANGEBYSCORE', K.groups_age, '-inf', now - group_ttl, 'LIMIT', 0, limit)) do
  redis.call('HDEL', K.groups, group)
  redis.call('HDEL', K.groups_left, group)
  redis.call('ZREM', K.groups_age, group)
  groups = groups + 1
end
local minid = now - dead_retention
if minid > 0 and redis.call('EXISTS', K.dead) == 1 then
  redis.call('XTRIM', K.dead, 'MINID', '~', minid)
end
for i = 1, 4 do
  local info = redis.pcall('XINFO', 'GROUPS', K.lanes[i])
  if type(info) == 'table' and not info.err then
    for _, g in ipairs(info) do
      local name, last_id
      for j = 1, #g, 2 do
        if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then last_id = g[j + 1] end
      end
      if name == GROUP and last_id ~= '0-0' then trim(i, last_id) end
    end
  end
  local info_consumers = redis.pcall('XINFO', 'CONSUMERS', K.lanes[i], GROUP)
  if type(info_consumers) == 'table' and not info_consumers.err then
    for _, c in ipairs(info_consumers) do
      local name, pending, idle
      for j = 1, #c, 2 do
        if c[j] == 'name' then name = c[j + 1] elseif c[j] == 'pending' then pending = c[j + 1] elseif c[j] == 'idle' then idle = c[j + 1] end
      end
      if name and pending == 0 and idle and idle > consumer_idle then
        redis.call('XGROUP', 'DELCONSUMER', K.lanes[i], GROUP, name)
        consumers = consumers + 1
      end
    end
  end
end
return {pruned, groups, consumers}
