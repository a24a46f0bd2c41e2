-- An expert's or the coordinator's action on a case: accept (an offer), decline (an offer),
-- release (an accepted case), complete (an accepted case), cancel (any open case; no expert).
-- KEYS: the router's (see _routing.lua); K.case is the case, no pools.
-- ARGV: the router's 13, then NA+1 action, +2 case id, +3 expert ('' for cancel), +4 detail
--   (a reason code, or the report reference of a completion).
-- Returns {'ok', expert, expert's pools} or {'err', code, state} with code notFound |
--   notHolder | state | action.
--#include _routing
local case_key = K.case
local action, case_id, who, detail = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3], ARGV[NA + 4]
local f = case_fields(case_key)
if not f then return {'err', 'notFound', ''} end
if action == 'cancel' then
  if f.state == 'completed' or f.state == 'cancelled' then return {'err', 'state', f.state} end
  local holder, pools = '', ''
  if f.state == 'offered' or f.state == 'accepted' then
    holder = f.expert
    unload(holder, f.weight, case_id)
    pools = redis.call('HGET', K.pools, holder) or ''
  end
  redis.call('HSET', case_key, 'state', 'cancelled', 'expert', '', 'closed_at', NOW)
  redis.call('PEXPIRE', case_key, A.closed_case_ttl_ms)
  redis.call('ZREM', K.wait, case_id)
  redis.call('ZREM', K.timers, case_id)
  redis.call('ZREM', K.escalated, case_id)
  audit('cancel', case_id, 'reason=' .. detail .. ';expert=' .. holder, holder)
  return {'ok', holder, pools}
end
if (f.state ~= 'offered' and f.state ~= 'accepted') or f.expert ~= who then
  return {'err', 'notHolder', f.state}
end
if action == 'accept' then
  if f.state ~= 'offered' then return {'err', 'state', f.state} end
  redis.call('HSET', case_key, 'state', 'accepted', 'accepted_at', NOW)
  if f.escalated == 0 then redis.call('ZADD', K.timers, f.deadline, case_id) else redis.call('ZREM', K.timers, case_id) end
  audit('accept', case_id, 'expert=' .. who, who)
  return {'ok', who, ''}
elseif action == 'decline' or action == 'release' then
  requeue(case_key, case_id, f)
  redis.call('HINCRBY', K.stats, 'declines', 1)
  audit(action, case_id, 'expert=' .. who .. ';reason=' .. detail .. ';weight=' .. f.weight, who)
  return {'ok', who, redis.call('HGET', K.pools, who) or ''}
elseif action == 'complete' then
  if f.state ~= 'accepted' then return {'err', 'state', f.state} end
  unload(who, f.weight, case_id)
  redis.call('HSET', case_key, 'state', 'completed', 'completed_at', NOW, 'report', detail, 'closed_at', NOW)
  redis.call('PEXPIRE', case_key, A.closed_case_ttl_ms)
  redis.call('ZREM', K.timers, case_id)
  redis.call('ZREM', K.escalated, case_id)
  redis.call('HINCRBY', K.stats, 'completed', 1)
  local late = 0
  if NOW > f.deadline then late = 1 end
  audit('complete', case_id, 'expert=' .. who .. ';report=' .. detail .. ';weight=' .. f.weight .. ';late=' .. late, who)
  return {'ok', who, redis.call('HGET', K.pools, who) or ''}
end
return {'err', 'action', f.state}
