-- The sending site disputes a signed read: it is read again whatever the sampling said.
-- ARGV: 3 case id
-- Returns {'opened' | 'added' (already being reviewed: the reason is added) | 'closed' (already
--   reviewed; the dispute is recorded) | 'unknown', state}.
--#include _qc
local case_id = ARGV[3]
local v = redis.call('HMGET', K.record, 'state', 'reasons', 'study')
if not v[1] then return {'unknown', ''} end
local state, reasons, study = v[1], v[2] or '', v[3]
local with = reasons
if not string.find(',' .. reasons .. ',', ',dispute,', 1, true) then
  if reasons == '' then with = 'dispute' else with = reasons .. ',dispute' end
end
if state == 'not_sampled' then
  redis.call('PERSIST', K.record)
  redis.call('HSET', K.record, 'state', 'reading', 'opened_at', NOW, 'sampled', '1', 'reasons', with)
  redis.call('ZADD', K.open, NOW, case_id)
  audit('qc.disputed', study, 'case=' .. case_id .. ';opened=1')
  return {'opened', 'reading'}
end
audit('qc.disputed', study, 'case=' .. case_id .. ';state=' .. state)
if state == 'closed' then return {'closed', state} end
redis.call('HSET', K.record, 'reasons', with)
return {'added', state}
