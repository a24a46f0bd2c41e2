-- KEYS: study, audit log, audit head, audit study index.
-- ARGV: allowed-from states (comma separated), target state, actor, action, details,
-- then field/value pairs to set with the transition.
-- Returns {outcome, previous state} with outcome ok | conflict | unknown.
--#include _audit
local study = KEYS[1]
local current = redis.call('HGET', study, 'state')
if not current then return {'unknown', ''} end
local allowed = false
for state in string.gmatch(ARGV[1], '[^,]+') do
  if state == current then allowed = true end
end
if not allowed then return {'conflict', current} end
local now = redis.call('TIME')
local ms = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
redis.call('HSET', study, 'state', ARGV[2], 'updatedAt', ms)
for i = 6, #ARGV, 2 do redis.call('HSET', study, ARGV[i], ARGV[i + 1]) end
local uid = redis.call('HGET', study, 'uid')
local details = 'from=' .. current .. ' to=' .. ARGV[2]
if ARGV[5] ~= '' then details = details .. ' ' .. ARGV[5] end
rg_audit_append(KEYS[2], KEYS[3], KEYS[4], ARGV[3], ARGV[4], uid, details)
return {'ok', current}
