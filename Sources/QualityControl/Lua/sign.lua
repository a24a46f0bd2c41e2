-- A first read was signed: count it for its expert and decide, once, whether it is read again.
-- ARGV: 3 case id, 4 study uid, 5 first reader, 6 their home site ('' none), 7 modality,
--   8 specialty, 9 site, 10 region, 11 sampled at random (1/0), 12 every report of an expert's
--   first N reads, 13 other reasons already decided (',' list: ai_critical_not_reported,
--   reported_critical_ai_missed), 14 ms an unsampled record is kept, 15 case weight.
-- Returns {'new' | 'same', sampled '1'/'0', reasons}. 'same': this read was counted before (a
--   retried signature): nothing changes.
--#include _qc
local case_id, study, expert, home = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local modality, specialty, site, region = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local random, first_n, given, keep_ms, weight = ARGV[11], tonumber(ARGV[12]), ARGV[13], ARGV[14], ARGV[15]
if redis.call('EXISTS', K.record) == 1 then
  local v = redis.call('HMGET', K.record, 'sampled', 'reasons')
  return {'same', v[1] or '0', v[2] or ''}
end
local n = redis.call('HINCRBY', K.reads, expert, 1)
local reasons = {}
for r in string.gmatch(given, '[^,]+') do reasons[#reasons + 1] = r end
if random == '1' then reasons[#reasons + 1] = 'random' end
if n <= first_n then reasons[#reasons + 1] = 'first_cases' end
local text = table.concat(reasons, ',')
local sampled = '0'
if #reasons > 0 then sampled = '1' end
redis.call('HSET', K.record, 'case', case_id, 'study', study, 'first_reader', expert, 'first_home', home,
  'modality', modality, 'specialty', specialty, 'site', site, 'region', region, 'read_n', n, 'signed_at', NOW,
  'reasons', text, 'sampled', sampled, 'weight', weight)
if sampled == '1' then
  redis.call('HSET', K.record, 'state', 'reading', 'opened_at', NOW)
  redis.call('ZADD', K.open, NOW, case_id)
  audit('qc.sampled', study, 'case=' .. case_id .. ';expert=' .. expert .. ';modality=' .. modality .. ';reasons=' .. text .. ';read=' .. n)
else
  redis.call('HSET', K.record, 'state', 'not_sampled')
  redis.call('PEXPIRE', K.record, keep_ms)
end
return {'new', sampled, text}
