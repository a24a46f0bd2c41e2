-- The record and delivery helpers of the task queue (`--#include _records`, which includes
-- `_queue`): the record codec (formats in `_queue.lua`), new deliveries, acknowledgement and
-- trimming, dead letters, and the enqueue of one task.
--
-- A fan-in group's record in K.groups is MessagePack [next key, next payload, next lane,
-- next max attempts, next group]: written by expect-group.lua, read by complete.lua.
--#include _queue

-- A lane's name (the table is built only when a script asks: dead letters are rare).
local function lane_name(i) return ({'stat', 'urgent', 'routine', 'bulk'})[i] end

-- A record as a table with named fields (formats in `_queue.lua`); a queued task's counters,
-- group and payload are read from its lane entry.
local function decode(v)
  local status = string.sub(v, 1, 1)
  if status == 'c' then
    local fence, ms = string.match(v, '^c (%S+) (%d+)$')
    return {status = 'c', fence = fence, completed_ms = tonumber(ms)}
  elseif status == 'q' then
    local fence, lane = string.match(v, '^q (%S+) (%d)$')
    lane = tonumber(lane)
    local r = {status = 'q', fence = fence, deliveries = 0, failures = 0, max_attempts = 1, lane = lane,
      group = '', first_enqueue_ms = 0, payload = ''}
    local entry = redis.call('XRANGE', K.lanes[lane], fence, fence)[1]
    local fields = entry and entry[2] or {}
    for j = 1, #fields, 2 do
      local name, value = fields[j], fields[j + 1]
      if name == 'm' then
        local delivery, failures, max_attempts, first = string.match(value, '^(%d+) (%d+) (%d+) (%d+)$')
        if delivery then
          r.deliveries, r.failures = tonumber(delivery) - 1, tonumber(failures)
          r.max_attempts, r.first_enqueue_ms = tonumber(max_attempts), tonumber(first)
        end
      elseif name == 'g' then r.group = value
      elseif name == 'p' then r.payload = value end
    end
    return r
  end
  local b = cmsgpack.unpack(string.sub(v, 3))
  return {status = 'd', fence = '', deliveries = b[1], failures = b[2], max_attempts = b[3], lane = b[4],
    group = b[5], first_enqueue_ms = b[6], payload = b[7]}
end

local function encode(r)
  if r.status == 'c' then return 'c ' .. r.fence .. ' ' .. string.format('%d', r.completed_ms) end
  if r.status == 'q' then return 'q ' .. r.fence .. ' ' .. r.lane end
  return 'd\n' .. cmsgpack.pack({r.deliveries, r.failures, r.max_attempts, r.lane, r.group, r.first_enqueue_ms, r.payload})
end

local function load(key)
  local v = redis.call('HGET', K.state, key)
  if not v then return nil end
  return decode(v)
end

local function save(key, r) redis.call('HSET', K.state, key, encode(r)) end

-- Stream ids compare as (ms, seq) pairs.
local function id_lt(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  if a_ms ~= b_ms then return a_ms < b_ms end
  return tonumber(a_seq) < tonumber(b_seq)
end

-- Appends a delivery entry to lane `lane`; returns its id.
local function append(lane, key, payload, meta, group)
  if group ~= '' then return redis.call('XADD', K.lanes[lane], '*', 'k', key, 'p', payload, 'm', meta, 'g', group) end
  return redis.call('XADD', K.lanes[lane], '*', 'k', key, 'p', payload, 'm', meta)
end

-- A new delivery: appends an entry (with r.payload) to the task's lane and makes it the fence.
-- A lane created here has no group yet: the next claim creates it at id 0. The entry's `m`
-- is "delivery failures max_attempts first_enqueue_ms", delivery = deliveries ended + 1.
local function push(key, r)
  r.status = 'q'
  local meta = string.format('%d %d %d %d', r.deliveries + 1, r.failures, r.max_attempts, r.first_enqueue_ms)
  r.fence = append(r.lane, key, r.payload, meta, r.group)
  save(key, r)
  return r.fence
end

-- Ends the current delivery: the entry leaves the PEL (and is trimmed later).
local function unlink(r)
  if r.fence ~= '' then
    redis.call('XACK', K.lanes[r.lane], GROUP, r.fence)
    r.fence = ''
  end
end

-- Drops acknowledged entries from the head of lane i: those older than both its oldest
-- pending entry and `upto`, an entry known to be delivered (whole nodes only).
local function trim(i, upto)
  local summary = redis.call('XPENDING', K.lanes[i], GROUP)
  local pending, oldest = summary[1], summary[2]
  local minid = upto
  if pending > 0 and id_lt(oldest, upto) then minid = oldest end
  redis.call('XTRIM', K.lanes[i], 'MINID', '~', minid)
end

-- 'r' for a task whose entry is claimed, else its record's status.
local function status_of(r)
  if r.status == 'q' and r.fence ~= '' then
    local p = redis.pcall('XPENDING', K.lanes[r.lane], GROUP, r.fence, r.fence, 1)
    if type(p) == 'table' and not p.err and #p > 0 then return 'r' end
  end
  return r.status
end

-- Idempotent enqueue of one task: {1, entry id} new, {0, status} known, {-1, 'nogroup'}.
-- strict = false drops a group that no longer exists instead of refusing.
local function enqueue(key, payload, lane, max_attempts, group, now, strict)
  local v = redis.call('HGET', K.state, key)
  if v then return {0, status_of(decode(v))} end
  if group ~= '' and redis.call('HEXISTS', K.groups, group) == 0 then
    if strict then return {-1, 'nogroup'} end
    group = ''
  end
  return {1, push(key, {status = 'q', fence = '', deliveries = 0, failures = 0, max_attempts = max_attempts,
    lane = lane, group = group, first_enqueue_ms = now, payload = payload})}
end

-- A member of fan-in group `group` is finished: completed, or dead-lettered (a member that can
-- never complete must not hold its group's next task back forever; the next task sees its
-- result missing). When it was the last, the group's next task is enqueued, after
-- `before_enqueue` (a caller's batched writes) runs; returns that task's key, else nil.
local function count_down(group, now, before_enqueue)
  local left = redis.call('HINCRBY', K.groups_left, group, '-1')
  if left > 0 then return nil end
  redis.call('HDEL', K.groups_left, group)
  local packed = left == 0 and redis.call('HGET', K.groups, group)
  if not packed then return nil end
  -- The group record (its format is at the top of this file).
  local next_key, next_payload, next_lane, next_max_attempts, next_group = unpack(cmsgpack.unpack(packed))
  redis.call('HDEL', K.groups, group)
  redis.call('ZREM', K.groups_age, group)
  if before_enqueue then before_enqueue() end
  local r = enqueue(next_key, next_payload, next_lane, next_max_attempts, next_group, now, false)
  if r[1] == 1 then return next_key end
  return nil
end

-- Moves a task to the dead letters (capped at about `cap` entries), forgets its record and
-- counts its fan-in group down.
local function dead_letter(key, r, reason, err, cap, now)
  redis.call('XADD', K.dead, 'MAXLEN', '~', cap, '*', 'key', key, 'lane', lane_name(r.lane), 'reason', reason,
    'error', err, 'deliveries', r.deliveries, 'failures', r.failures, 'max_attempts', r.max_attempts,
    'group', r.group, 'enqueued_ms', r.first_enqueue_ms, 'dead_ms', now, 'payload', r.payload or '')
  redis.call('HDEL', K.state, key)
  if r.group ~= '' then count_down(r.group, now, nil) end
end
