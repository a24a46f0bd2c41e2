-- Plans a claim: how many waiting entries to take from which lane, in that order. The client
-- then reads them with one `XREADGROUP … COUNT count` per planned lane (the plan is advice,
-- not a lock: entries another consumer took in between are simply not returned).
-- Overdue work of a lower lane (waiting longer than its lane's aging cap) comes first, then
-- lanes by priority, each up to its waiting count (the group's lag).
-- Writes nothing but a missing lane or group, created empty.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: want (tasks at most), then the aging caps in ms of lanes 2, 3, 4 (0 = none).
-- Returns {now ms, {lane index, count, …}, tails}; when nothing waits the plan is empty and
--   tails holds the 4 lanes' last entry ids ('0-0' for an empty lane) to block on.
--#include _queue
local want = tonumber(ARGV[1])
local now = now_ms()
local waiting, last_delivered = {0, 0, 0, 0}, {}
for i = 1, 4 do
  local groups = redis.pcall('XINFO', 'GROUPS', K.lanes[i])
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local name, last_id, lag
      for j = 1, #g, 2 do
        local field = g[j]
        if field == 'name' then name = g[j + 1] elseif field == 'last-delivered-id' then last_id = g[j + 1] elseif field == 'lag' then lag = g[j + 1] end
      end
      if name == GROUP then
        last_delivered[i] = last_id
        -- Redis cannot always tell the lag (after deletions): count what a claim could take.
        if type(lag) ~= 'number' then lag = #redis.call('XRANGE', K.lanes[i], '(' .. last_id, '+', 'COUNT', want) end
        waiting[i] = lag
      end
    end
    if not last_delivered[i] then
      -- The lane exists but has no group yet (created by an enqueue): create it at the start.
      redis.call('XGROUP', 'CREATE', K.lanes[i], GROUP, '0')
      last_delivered[i] = '0-0'
      waiting[i] = redis.call('XLEN', K.lanes[i])
    end
  elseif type(groups) == 'table' and string.find(groups.err, 'no such key', 1, true) then
    -- A lane that does not exist yet is created empty with its group: a failed call costs
    -- ~4 µs in a script, and every later plan would pay it again for each idle lane.
    redis.call('XGROUP', 'CREATE', K.lanes[i], GROUP, '0', 'MKSTREAM')
    last_delivered[i] = '0-0'
  end
end
local remaining = want
local taken = {0, 0, 0, 0}
local plan = {}
local function take(i, n)
  n = math.min(n, remaining, waiting[i] - taken[i])
  if n <= 0 then return end
  taken[i] = taken[i] + n
  remaining = remaining - n
  if plan[#plan - 1] == i then plan[#plan] = plan[#plan] + n
  else plan[#plan + 1] = i plan[#plan + 1] = n end
end
-- Aging: work that waited longer than its lane's cap goes before newer higher-lane work.
for i = 2, 4 do
  local cap = tonumber(ARGV[i])
  if remaining > 0 and cap > 0 and waiting[i] > 0 and now - cap > 0 then
    take(i, #redis.call('XRANGE', K.lanes[i], '(' .. last_delivered[i], tostring(now - cap), 'COUNT', remaining))
  end
end
for i = 1, 4 do take(i, waiting[i]) end
local tails = {}
if remaining == want then
  for i = 1, 4 do
    local last = redis.call('XREVRANGE', K.lanes[i], '+', '-', 'COUNT', 1)[1]
    tails[i] = (last and last[1]) or '0-0'
  end
end
return {now, plan, tails}
