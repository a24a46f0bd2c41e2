-- A qc-role reader settles a significant discrepancy with the final score.
-- ARGV: 3 case id, 4 arbiter, 5 final score, 6 comment, 7 retention ms, 8 flag: minimum
--   reviews, 9 flag: rate, 10 flag: scores counted.
-- Returns {'closed', newly flagged '1'/'0'} or {'err', code, state}: unknown | state (not
--   awaiting arbitration) | conflict (the arbiter read it first or second).
--#include _qc
local case_id, arbiter, score, comment = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local v = redis.call('HMGET', K.record, 'state', 'first_reader', 'reviewer', 'study')
if not v[1] then return {'err', 'unknown', ''} end
if v[1] ~= 'arbitration' then return {'err', 'state', v[1]} end
if arbiter == v[2] or arbiter == v[3] then return {'err', 'conflict', v[1]} end
redis.call('HSET', K.record, 'arbiter', arbiter, 'arbiter_comment', comment, 'arbitrated_at', NOW)
audit('qc.arbitrated', v[4], 'case=' .. case_id .. ';arbiter=' .. arbiter .. ';final=' .. score)
local flagged = close(case_id, v[4], v[2], score, ARGV[7], ARGV[8], ARGV[9], ARGV[10])
return {'closed', tostring(flagged)}
