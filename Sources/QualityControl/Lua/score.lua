-- The second reader scores the first report (RADPEER) after reading blind.
-- ARGV: 3 case id, 4 reviewer, 5 score (1 2a 2b 3a 3b), 6 comment, 7 scores that go to
--   arbitration (' ' list), 8 retention ms of a closed review, 9 flag: minimum reviews,
--   10 flag: rate, 11 flag: scores counted (' ' list).
-- Returns {'closed' | 'arbitration' | 'same', newly flagged '1'/'0'} or {'err', code, state}
--   with code unknown | state (not being read) | self (the first reader cannot review).
--#include _qc
local case_id, reviewer, score, comment = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local to_arbitration, retention = ARGV[7], ARGV[8]
local v = redis.call('HMGET', K.record, 'state', 'first_reader', 'study', 'reviewer', 'score')
if not v[1] then return {'err', 'unknown', ''} end
local state, first, study = v[1], v[2], v[3]
if state ~= 'reading' then
  if (state == 'arbitration' or state == 'closed') and v[4] == reviewer and v[5] == score then return {'same', '0'} end
  return {'err', 'state', state}
end
if reviewer == first then return {'err', 'self', state} end
redis.call('HSET', K.record, 'reviewer', reviewer, 'score', score, 'comment', comment, 'scored_at', NOW)
audit('qc.scored', study, 'case=' .. case_id .. ';reviewer=' .. reviewer .. ';score=' .. score)
if string.find(' ' .. to_arbitration .. ' ', ' ' .. score .. ' ', 1, true) then
  redis.call('HSET', K.record, 'state', 'arbitration')
  redis.call('ZADD', K.arbitration, NOW, case_id)
  audit('qc.arbitration', study, 'case=' .. case_id .. ';score=' .. score)
  return {'arbitration', '0'}
end
local flagged = close(case_id, study, first, score, retention, ARGV[9], ARGV[10], ARGV[11])
return {'closed', tostring(flagged)}
