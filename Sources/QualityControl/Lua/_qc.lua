-- Shared by the QC scripts. Every key is tagged {qc} (one cluster slot), so a review's record,
-- the queues, the per-expert figures and the qc audit chain change in one atomic step.
-- KEYS: 1 the case's QC record (hash, see QCStore), 2 open reviews (zset case -> opened ms),
--   3 arbitration queue (zset case -> scored ms), 4 signed reads per expert (hash),
--   5 per-expert figures (hash "<expert>|reviews", "<expert>|<score>"), 6 flagged experts
--   (hash expert -> "rate|reviews|ms"), 7-9 the qc audit chain (log, head, study index).
-- ARGV: 1 now (ms), 2 actor, then the script's own from ARGV[3].
--#include _audit
local K = {
  record = KEYS[1], open = KEYS[2], arbitration = KEYS[3], reads = KEYS[4], stats = KEYS[5], flagged = KEYS[6],
  audit_log = KEYS[7], audit_head = KEYS[8], audit_index = KEYS[9],
}
local NOW, ACTOR = tonumber(ARGV[1]), ARGV[2]

local function audit(action, study, details)
  return rg_audit_append(K.audit_log, K.audit_head, K.audit_index, ACTOR, action, study, details)
end

-- Counts a final score against the first reader and flags them (once) when their share of
-- flag-worthy scores reaches the policy's rate over at least `min_reviews` reviews.
-- Returns 1 when this score newly flagged the expert.
local function count_final(expert, score, study, case_id, min_reviews, rate, flag_scores)
  local reviews = redis.call('HINCRBY', K.stats, expert .. '|reviews', 1)
  redis.call('HINCRBY', K.stats, expert .. '|' .. score, 1)
  local discrepant = 0
  for s in string.gmatch(flag_scores, '%S+') do
    discrepant = discrepant + tonumber(redis.call('HGET', K.stats, expert .. '|' .. s) or '0')
  end
  if reviews >= tonumber(min_reviews) and discrepant / reviews >= tonumber(rate) and redis.call('HEXISTS', K.flagged, expert) == 0 then
    redis.call('HSET', K.flagged, expert, string.format('%.4f', discrepant / reviews) .. '|' .. reviews .. '|' .. NOW)
    audit('qc.flagged', study, 'expert=' .. expert .. ';reviews=' .. reviews .. ';discrepant=' .. discrepant .. ';case=' .. case_id)
    return 1
  end
  return 0
end

-- Closes a review with its final score: off the queues, counted, kept for `retention_ms`.
local function close(case_id, study, expert, score, retention_ms, min_reviews, rate, flag_scores)
  redis.call('HSET', K.record, 'state', 'closed', 'final', score, 'closed_at', NOW)
  redis.call('ZREM', K.open, case_id)
  redis.call('ZREM', K.arbitration, case_id)
  redis.call('PEXPIRE', K.record, retention_ms)
  local flagged = count_final(expert, score, study, case_id, min_reviews, rate, flag_scores)
  audit('qc.closed', study, 'case=' .. case_id .. ';expert=' .. expert .. ';final=' .. score)
  return flagged
end
