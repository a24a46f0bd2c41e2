-- Lease renewal: resets the idle time of each entry the consumer still holds
-- (`XCLAIM … JUSTID`, which does not count a delivery).
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: consumer, then per task: key, fence, lane index.
-- Returns the keys whose entry the consumer no longer holds (reclaimed, handed back or finished).
--#include _queue
local consumer = ARGV[1]
local fences_by_lane, key_of = {}, {}
for j = 2, #ARGV, 3 do
  local key, fence, lane = ARGV[j], ARGV[j + 1], tonumber(ARGV[j + 2])
  local fences = fences_by_lane[lane]
  if not fences then fences = {} fences_by_lane[lane] = fences end
  fences[#fences + 1] = fence
  key_of[fence] = key
end
local held = {}
for lane, fences in pairs(fences_by_lane) do
  local args = {'XCLAIM', K.lanes[lane], GROUP, consumer, '0'}
  for _, id in ipairs(fences) do args[#args + 1] = id end
  args[#args + 1] = 'JUSTID'
  local claimed = redis.pcall(unpack(args))
  if type(claimed) == 'table' and claimed.err then claimed = {} end
  for _, id in ipairs(claimed) do held[id] = true end
end
local lost = {}
for fence, key in pairs(key_of) do
  if not held[fence] then lost[#lost + 1] = key end
end
return lost
