-- Completes one or more claimed tasks; each is accepted or refused on its own.
-- A claim is current when its record is exactly `q <fence> <lane>` (a string compare, nothing
-- decoded); lane and group then come from the caller, which read them from that same entry.
-- A task's effects run first (pcall): if one fails the task is refused before its state
-- changes (earlier effects of that task are not rolled back: Lua has none).
-- KEYS: the queue's 14 (see _queue.lua), then from KEYS[15] the result keys (of tasks with a
--   result) and the effect keys; ARGV refers to them by their absolute KEYS index.
-- ARGV: n, result ttl ms (0 = none), the n task keys, then per task: fence, lane index, group
--   id ('' none), result key index (0 = no result), [result,] effect count, then per effect:
--   command, key index, argument count, arguments…
-- Returns {codes, {task index, next task key, …}}: codes holds one letter per task, o accepted,
--   a again (this claim had completed already), f fenced, u unknown, s other state, e effect
--   failed, x effect not allowed; then the fan-in tasks that these completions enqueued.
--#include _records
local allowed = {HSET=1, HSETNX=1, HINCRBY=1, HDEL=1, SADD=1, SREM=1, SET=1, INCRBY=1, DEL=1,
  RPUSH=1, LPUSH=1, ZADD=1, ZINCRBY=1, EXPIRE=1, PEXPIRE=1, XADD=1}
local n, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', K.state, unpack(ARGV, 3, 2 + n))
local now = now_ms()
local stamp = ' ' .. string.format('%d', now)
local a = 3 + n
local writes, done, codes, nexts, acks, newest, seen = {}, {}, {}, {}, {}, {}, {}
local function flush()
  if #writes > 0 then redis.call('HSET', K.state, unpack(writes)) writes = {} end
end
for j = 1, n do
  local key, fence, lane_text, group, result_key = ARGV[2 + j], ARGV[a], ARGV[a + 1], ARGV[a + 2], tonumber(ARGV[a + 3])
  local lane = tonumber(lane_text)
  a = a + 4
  local result
  if result_key > 0 then result = ARGV[a] a = a + 1 end
  local effect_count = tonumber(ARGV[a])
  a = a + 1
  local effects = a
  for _ = 1, effect_count do a = a + 3 + tonumber(ARGV[a + 2]) end
  local code = 'o'
  local v = seen[key] or stored[j]
  if v == 'q ' .. fence .. ' ' .. lane_text then
    local ok, e = true, effects
    for _ = 1, effect_count do
      local command, key_index, argc = ARGV[e], tonumber(ARGV[e + 1]), tonumber(ARGV[e + 2])
      if not allowed[command] then ok, code = false, 'x' break end
      local r = redis.pcall(command, KEYS[key_index], unpack(ARGV, e + 3, e + 2 + argc))
      if type(r) == 'table' and r.err then ok, code = false, 'e' break end
      e = e + 3 + argc
    end
    if ok then
      local tomb = 'c ' .. fence .. stamp
      seen[key] = tomb
      writes[#writes + 1] = key
      writes[#writes + 1] = tomb
      done[#done + 1] = key
      local ids = acks[lane]
      if not ids then ids = {} acks[lane] = ids end
      ids[#ids + 1] = fence
      -- Any acknowledged entry bounds the trim safely (all before it were delivered); the
      -- last one is about the newest, and comparing ids here would cost ~1 µs per task.
      newest[lane] = fence
      if result then
        if ttl > 0 then redis.call('SET', KEYS[result_key], result, 'PX', ttl) else redis.call('SET', KEYS[result_key], result) end
      end
      if group ~= '' then
        local next_key = count_down(group, now, flush)
        if next_key then
          nexts[#nexts + 1] = j
          nexts[#nexts + 1] = next_key
        end
      end
    end
  elseif not v then
    code = 'u'
  else
    local rec = decode(v)
    if rec.fence ~= fence then code = 'f'
    elseif rec.status == 'c' then code = 'a'
    else code = 's' end
  end
  codes[j] = code
end
flush()
if #done > 0 then redis.call('RPUSH', K.done, unpack(done)) end
for lane, ids in pairs(acks) do
  redis.call('XACK', K.lanes[lane], GROUP, unpack(ids))
  trim(lane, newest[lane])
end
return {table.concat(codes), nexts}
