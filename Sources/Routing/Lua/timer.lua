-- A case's timer is due: an offer not accepted in time goes back to waiting (excluding the
-- expert), a passed deadline escalates, a waiting case widens to the next level or ages to a
-- higher effective priority.
-- KEYS: the router's (see _routing.lua); K.case is the case, no pools.
-- ARGV: the router's 13, then NA+1 case id.
-- Returns {outcome, expert, expert's pools}; outcome requeued (offer timed out) | reroute
--   (a waiting case, maybe widened or aged: route it again) | escalated | breach | gone | notdue.
--#include _routing
local case_key = K.case
local case_id = ARGV[NA + 1]
local due = redis.call('ZSCORE', K.timers, case_id)
if not due or tonumber(due) > NOW then return {'notdue', '', ''} end
local f = case_fields(case_key)
if not f then redis.call('ZREM', K.timers, case_id) return {'gone', '', ''} end
if f.state == 'offered' then
  if NOW >= f.accept_by then
    local holder = f.expert
    if f.escalated == 0 and NOW >= f.deadline then escalate(case_id, f, case_key, 'escalate') end
    requeue(case_key, case_id, f)
    redis.call('HINCRBY', K.stats, 'timeouts', 1)
    audit('accept_timeout', case_id, 'expert=' .. holder .. ';weight=' .. f.weight, holder)
    return {'requeued', holder, redis.call('HGET', K.pools, holder) or ''}
  end
  if f.escalated == 0 and NOW >= f.deadline then escalate(case_id, f, case_key, 'escalate') end
  redis.call('ZADD', K.timers, f.accept_by, case_id)
  return {'escalated', f.expert, ''}
elseif f.state == 'accepted' then
  if f.escalated == 0 and NOW >= f.deadline then escalate(case_id, f, case_key, 'sla_breach') end
  redis.call('ZREM', K.timers, case_id)
  return {'breach', f.expert, ''}
elseif f.state == 'waiting' then
  local changed = false
  while f.level < f.maxlevel and NOW >= widen_due(f) do
    f.level = f.level + 1
    changed = true
    audit('widen', case_id, 'level=' .. f.level)
  end
  while f.eprio > 0 do
    local cap = age_cap(f.eprio)
    if NOW < f.aged + cap then break end
    f.aged = f.aged + cap
    f.eprio = f.eprio - 1
    changed = true
    audit('age', case_id, 'eprio=' .. f.eprio)
  end
  redis.call('HSET', case_key, 'level', f.level, 'eprio', f.eprio, 'aged', f.aged)
  if f.escalated == 0 and NOW >= f.deadline then escalate(case_id, f, case_key, 'escalate') end
  enqueue_waiting(case_id, f)
  if changed then redis.call('LPUSH', K.wake, 'case:' .. case_id) end
  return {'reroute', '', ''}
end
redis.call('ZREM', K.timers, case_id)
return {'gone', '', ''}
