-- Lease expiry: entries idle in a lane's PEL for a lease go back to their lane as new
-- deliveries, or to the dead letters ('poison') when they keep expiring.
-- KEYS: the queue's 14 (see _queue.lua).
-- ARGV: lease ms, max deliveries, limit per lane, dead-letter cap.
-- Returns {requeued, dead-lettered, now ms, next expiry ms or -1}.
--#include _records
local lease, max_deliveries, limit, cap = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local lease_ms = tonumber(lease)
local now = now_ms()
local requeued, dead, next_expiry = 0, 0, -1
for i = 1, 4 do
  local expired = redis.pcall('XPENDING', K.lanes[i], GROUP, 'IDLE', lease, '-', '+', limit)
  if type(expired) == 'table' and not expired.err then
    for _, pending in ipairs(expired) do
      local id = pending[1]
      local entry = redis.call('XRANGE', K.lanes[i], id, id)[1]
      local key
      if entry then
        local fields = entry[2]
        for j = 1, #fields, 2 do if fields[j] == 'k' then key = fields[j + 1] end end
      end
      local rec = key and load(key)
      if rec and rec.status == 'q' and rec.fence == id then
        unlink(rec)
        rec.deliveries = rec.deliveries + 1
        if rec.deliveries >= max_deliveries then
          dead_letter(key, rec, 'poison', 'lease expired on each of ' .. rec.deliveries .. ' deliveries', cap, now)
          dead = dead + 1
        else
          push(key, rec)
          requeued = requeued + 1
        end
      else
        -- An entry no record points at any more: just release it.
        redis.call('XACK', K.lanes[i], GROUP, id)
      end
    end
    -- XPENDING's extended form: {id, consumer, idle ms, delivery count} per entry.
    for _, pending in ipairs(redis.call('XPENDING', K.lanes[i], GROUP, '-', '+', 1000)) do
      local idle_ms = pending[3]
      local at = now + lease_ms - idle_ms
      if next_expiry < 0 or at < next_expiry then next_expiry = at end
    end
  end
end
return {requeued, dead, now, next_expiry}
