-- The router's prelude, included by every routing script (`--#include _routing`). Each script
-- is a single atomic step; every key it touches is in KEYS, all under the `{rt}` hash tag.
--
-- KEYS (built by `ExpertRouter.command`): 1…18 the static keys (`RoutingKeys.statics`, in the
-- order of `K` below), 19 the case hash (a placeholder for scripts that touch no case), 20…
-- the pool ZSETs the script may touch.
-- ARGV (built by `ExpertRouter.baseArguments`): 1…13 the same for every script (`A` below),
-- then the script's own arguments from ARGV[NA + 1].
--
-- Time comes from the caller (A.now), never from TIME, so a simulation can run the real
-- scripts on a virtual clock.
--
-- Cost: this prelude runs on every call: ~4.7-6 µs of CPU on the benchmark VM (the positional
-- one it replaced, ~3; an assign script takes ~180 µs of server time at 600 experts).
-- Arguments stay text until a script uses them (a tonumber costs ~0.2 µs).
--
-- A case hash (`route:{rt}:case:<id>`) holds: id, spec, site, region, prio (priority rank,
-- 0 STAT), eprio (effective priority after ageing), weight, submitted, deadline, level
-- (widening, 0 = the case's own specialty), maxlevel, state (new | waiting | offered |
-- accepted | completed | cancelled), expert (the holder, '' none), excl (' '-separated experts
-- who declined or timed out, with a leading and trailing space), declines, offers, escalated
-- (0/1), aged (ms the effective priority last changed), accept_by, waiting_since, offered_at,
-- accepted_at, completed_at, closed_at, report. Scripts read it with `case_fields`.

-- The fixed KEYS, in the order of `RoutingKeys.statics`.
local K = {
  cap = KEYS[1],              -- HASH expert -> capacity (work units)
  load = KEYS[2],             -- HASH expert -> weighted open work
  recent = KEYS[3],           -- HASH expert -> "decayedCount:ms" (tie breaker)
  available_until = KEYS[4],  -- HASH expert -> available until (ms; 0 = not available)
  cred = KEYS[5],             -- HASH "expert|scope" -> credential expiry (ms; 0 = none)
  home = KEYS[6],             -- HASH expert -> home site (conflict rule)
  pools = KEYS[7],            -- HASH expert -> space-separated pool names
  wait = KEYS[8],             -- ZSET waiting cases by effective priority * 1e13 + submit ms
  timers = KEYS[9],           -- ZSET cases by next due time
  audit = KEYS[10],           -- STREAM the audit trail
  wake = KEYS[11],            -- LIST "case:<id>" / "expert:<id>" signals for the routers
  escalated = KEYS[12],       -- ZSET cases past their deadline, by deadline
  open = KEYS[13],            -- HASH expert -> open assignments
  next_check = KEYS[14],      -- ZSET expert by next availability check
  profile = KEYS[15],         -- HASH expert -> roster JSON
  presence = KEYS[16],        -- HASH expert -> "status|heartbeatUntilMs"
  stats = KEYS[17],           -- HASH counters
  held = KEYS[18],            -- ZSET 'expert|case' (score 0) for every offered or accepted case: worklists
  case = KEYS[19],            -- HASH the case (or a placeholder)
  first_pool = 20,            -- KEYS[first_pool …] are pool ZSETs
}

-- The ARGV every script receives, in the order of `ExpertRouter.baseArguments`, as sent (text):
-- a script converts what it uses (tonumber costs ~0.2 µs, and most scripts use few of them).
local A = {
  now = ARGV[1],                  -- ms, the caller's clock (as a number: NOW)
  actor = ARGV[2],                -- audit actor
  audit_max = ARGV[3],            -- audit stream MAXLEN ~
  accept_timeout_ms = ARGV[4],    -- an offer not accepted by then times out
  stat_margin = ARGV[5],          -- STAT may fill capacity * (1 + margin)
  conflict_rule = ARGV[6],        -- '1': no expert reads a case of their home site
  recent_half_life_ms = ARGV[7],  -- decay of the recent-offers tie breaker
  max_scan = ARGV[8],             -- candidates scanned per assign at most
  widen_1 = ARGV[9],              -- fraction of the deadline window after which level 0 -> 1
  widen_2 = ARGV[10],             -- … and level 1 -> 2
  age_routine_ms = ARGV[11],      -- routine (eprio 2) ages to urgent after this
  age_urgent_ms = ARGV[12],       -- urgent (eprio 1) ages to STAT after this
  seed = ARGV[13],                -- jitter seed
  closed_case_ttl_ms = ARGV[14],  -- a completed or cancelled case expires after this
  balance = ARGV[15],             -- 'load': least work in hand first; 'ratio': least share of capacity
  max_open = ARGV[16],            -- cases an expert may hold at once (offered + accepted); 0 = no limit
}
local NA = 16  -- a script's own arguments are ARGV[NA + 1 …]
local NOW = tonumber(A.now)
local TIE = 5e-7

-- The one place the audit trail is written (hash chaining hooks in here). `expert`, when the
-- step is about one, is its own field: the coordinators read case events by it.
local function audit(action, case, details, expert)
  if expert and expert ~= '' then
    redis.call('XADD', K.audit, 'MAXLEN', '~', A.audit_max, '*',
      't', A.now, 'actor', A.actor, 'action', action, 'case', case, 'expert', expert, 'details', details)
  else
    redis.call('XADD', K.audit, 'MAXLEN', '~', A.audit_max, '*',
      't', A.now, 'actor', A.actor, 'action', action, 'case', case, 'details', details)
  end
end

-- A small per-expert tie breaker (< 1e-7), different in each call.
local function jitter(id)
  local h = tonumber(A.seed) % 1000003
  for i = 1, #id do h = (h * 31 + string.byte(id, i)) % 1000003 end
  return (h % 1000) * 1e-10
end

-- The pool score of an expert with `load` of `cap` work units: the share of capacity in use
-- ('ratio'), or the work in hand ('load', units / 1000 so both stay within [0, 1] below
-- capacity and the assign script's score bound works for both). Capacity stays a hard limit
-- either way; 'load' sends a case to whoever will get to it soonest when reading speeds are
-- alike, 'ratio' fills experts in proportion to their capacity.
local BY_LOAD = A.balance == 'load'
local function score_of(load, cap)
  if cap <= 0 then return 1e9 end
  if BY_LOAD then return load / 1000 end
  return load / cap
end

-- An expert's pool score (1e9 without capacity), load, capacity.
local function ratio(id)
  local cap = tonumber(redis.call('HGET', K.cap, id) or '0')
  local load = tonumber(redis.call('HGET', K.load, id) or '0')
  return score_of(load, cap), load, cap
end

-- The expert's recent offers, halved every half-life.
local function recent(id)
  local v = redis.call('HGET', K.recent, id)
  if not v then return 0 end
  local sep = string.find(v, ':', 1, true)
  local count = tonumber(string.sub(v, 1, sep - 1))
  local at = tonumber(string.sub(v, sep + 1))
  return count * math.pow(0.5, math.max(0, NOW - at) / tonumber(A.recent_half_life_ms))
end

-- Records that `id` holds (is offered or has accepted) a case, for the expert's worklist.
local function hold(id, case_id)
  redis.call('ZADD', K.held, 0, id .. '|' .. case_id)
end

-- Frees an expert's share of a case, drops it from their worklist and wakes the routers.
local function unload(id, weight, case_id)
  redis.call('ZREM', K.held, id .. '|' .. case_id)
  local left = redis.call('HINCRBY', K.load, id, -weight)
  if left < 0 then redis.call('HSET', K.load, id, 0) end
  local open = redis.call('HINCRBY', K.open, id, -1)
  if open < 0 then redis.call('HSET', K.open, id, 0) end
  redis.call('LPUSH', K.wake, 'expert:' .. id)
  redis.call('LTRIM', K.wake, 0, 255)
end

-- The case fields the scripts work with, or nil when the case does not exist.
local function case_fields(key)
  local v = redis.call('HMGET', key, 'state', 'expert', 'weight', 'deadline', 'escalated', 'submitted',
    'level', 'maxlevel', 'eprio', 'aged', 'accept_by', 'excl', 'site', 'avoid')
  if not v[1] then return nil end
  return { state = v[1], expert = v[2] or '', weight = tonumber(v[3]), deadline = tonumber(v[4]),
    escalated = tonumber(v[5]), submitted = tonumber(v[6]), level = tonumber(v[7]), maxlevel = tonumber(v[8]),
    eprio = tonumber(v[9]), aged = tonumber(v[10]), accept_by = tonumber(v[11] or '0'), excl = v[12] or ' ',
    site = v[13], avoid = v[14] or '' }
end

-- When a waiting case at f.level (0 or 1) widens to the next level.
local function widen_due(f)
  local fraction = A.widen_1
  if f.level == 1 then fraction = A.widen_2 end
  return f.submitted + math.floor((f.deadline - f.submitted) * tonumber(fraction))
end

-- How long a case waits at effective priority `eprio` (1 urgent, 2 routine) before it ages.
local function age_cap(eprio)
  if eprio == 1 then return tonumber(A.age_urgent_ms) end
  return tonumber(A.age_routine_ms)
end

-- Next time something happens to a waiting case: widening, ageing or its deadline.
local function waiting_due(f)
  local t = nil
  local function consider(x) if not t or x < t then t = x end end
  if f.level < f.maxlevel then consider(widen_due(f)) end
  if f.eprio > 0 then consider(f.aged + age_cap(f.eprio)) end
  if f.escalated == 0 then consider(f.deadline) end
  return t
end

-- Puts a case (already in state 'waiting' in its hash) on the wait queue and its timer.
local function enqueue_waiting(case_id, f)
  redis.call('ZADD', K.wait, f.eprio * 1e13 + f.submitted, case_id)
  local due = waiting_due(f)
  if due then redis.call('ZADD', K.timers, due, case_id) else redis.call('ZREM', K.timers, case_id) end
end

-- Takes a case away from its holder and makes it wait again, excluding the holder.
local function requeue(case_key, case_id, f)
  unload(f.expert, f.weight, case_id)
  f.excl = f.excl .. f.expert .. ' '
  redis.call('HSET', case_key, 'state', 'waiting', 'expert', '', 'excl', f.excl, 'waiting_since', NOW)
  redis.call('HINCRBY', case_key, 'declines', 1)
  f.state = 'waiting'
  enqueue_waiting(case_id, f)
  redis.call('LPUSH', K.wake, 'case:' .. case_id)
end

local function escalate(case_id, f, case_key, why)
  f.escalated = 1
  redis.call('HSET', case_key, 'escalated', 1)
  redis.call('ZADD', K.escalated, f.deadline, case_id)
  redis.call('HINCRBY', K.stats, 'escalations', 1)
  audit(why, case_id, 'state=' .. f.state .. ';level=' .. f.level .. ';expert=' .. f.expert, f.expert)
end
