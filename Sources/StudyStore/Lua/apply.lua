-- Stores a decision of the study state machine if the record still has the version the
-- decision was made on, and writes its audit entry in the same step.
-- KEYS: 1-4 (see _study)
-- ARGV: 1 expected version, 2 new state ('' = unchanged), 3 actor, 4 audit action ('' = no entry),
--       5 details, 6 number of fields to set (n), then n field/value pairs, then fields to delete
-- Returns {'ok', new version, previous state} | {'conflict', current version, state} | {'missing'}
--#include _study
local state = redis.call('HGET', K_RECORD, 'state')
if not state then return {'missing'} end
local version = redis.call('HGET', K_RECORD, 'v') or '0'
if version ~= ARGV[1] then return {'conflict', version, state} end
local next_version = tostring(tonumber(version) + 1)
local target = ARGV[2]
local writes = {'v', next_version}
if target ~= '' and target ~= state then
  writes[#writes + 1] = 'state'
  writes[#writes + 1] = target
  writes[#writes + 1] = 'updatedAt'
  writes[#writes + 1] = tostring(now_ms())
end
local n = tonumber(ARGV[6])
for i = 7, 6 + 2 * n, 2 do
  writes[#writes + 1] = ARGV[i]
  writes[#writes + 1] = ARGV[i + 1]
end
redis.call('HSET', K_RECORD, unpack(writes))
if #ARGV > 6 + 2 * n then redis.call('HDEL', K_RECORD, unpack(ARGV, 7 + 2 * n)) end
if ARGV[4] ~= '' then
  local details = 'from=' .. state .. ' to=' .. (target ~= '' and target or state)
  if ARGV[5] ~= '' then details = details .. ' ' .. ARGV[5] end
  audit(ARGV[3], ARGV[4], redis.call('HGET', K_RECORD, 'uid'), details)
end
return {'ok', next_version, state}
