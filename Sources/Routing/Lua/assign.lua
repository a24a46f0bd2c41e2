-- Submits a case (mode `submit`: create it, then route it) or routes a waiting case again
-- (mode `route`): offers it to the eligible expert with the lowest load/capacity ratio in the
-- case's pools (ties: fewest recent offers, then jitter), or makes it wait.
-- KEYS: the router's (see _routing.lua); K.case is the case, the pools follow from
--   K.first_pool in the order of the pool names.
-- ARGV: the router's (see _routing.lua), then NA+1 case id, +2 mode, +3 specialty, +4 site, +5 region,
--   +6 level, +7 priority rank, +8 weight, +9 deadline ms, +10 max level, +11 kind (read |
--   review), +12 experts excluded from the start (' '-separated: a second read excludes the
--   first reader), +13 home site whose experts may not take it ('' none: a second read comes
--   from another hospital than the first), +14 number of pools, +15… pool names (spec@scope).
--   +11…+13 are read in submit mode only.
-- Returns {outcome, expert, expert's pools, scanned}; outcome assigned | waiting | duplicate |
--   skip | stale (for duplicate and skip the third value is the case's state, for stale its
--   level).
--
-- Every decision keeps its explanation in the case hash: `why<n>` (n = 1…20, the decision's
-- number, `decisions`; the last slot is reused past 20) = "<now>|<outcome>|<expert>|<level>|
-- <scanned>|id=reason id=reason …" for each candidate the scan looked at, reason one of
-- unavailable (off shift, offline or no longer qualified), credential (none valid for the
-- site), declined (declined, timed out, or read it first), conflict (home site sent it),
-- same_hospital (a second read from the first reader's hospital), full (no capacity left),
-- ranked (eligible, another ranked first) or offered. `first_offered_at` keeps the first
-- offer's time (turnaround: received -> assigned).
--#include _routing
local case_key = K.case
local case_id, mode, specialty, site, region = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3], ARGV[NA + 4], ARGV[NA + 5]
local level = tonumber(ARGV[NA + 6])
local priority, weight_text, deadline, max_level = ARGV[NA + 7], ARGV[NA + 8], ARGV[NA + 9], ARGV[NA + 10]
local kind, first_excluded, avoid_home = ARGV[NA + 11], ARGV[NA + 12], ARGV[NA + 13]
local npools = tonumber(ARGV[NA + 14])
local first_pool_name = NA + 15
if mode == 'submit' then
  local state = redis.call('HGET', case_key, 'state')
  if state then return {'duplicate', redis.call('HGET', case_key, 'expert') or '', state, '0'} end
  local excl = ' '
  for id in string.gmatch(first_excluded, '%S+') do excl = excl .. id .. ' ' end
  redis.call('HSET', case_key, 'id', case_id, 'spec', specialty, 'site', site, 'region', region,
    'prio', priority, 'eprio', priority, 'weight', weight_text, 'submitted', NOW, 'deadline', deadline,
    'level', 0, 'maxlevel', max_level, 'state', 'new', 'excl', excl, 'declines', 0, 'offers', 0,
    'escalated', 0, 'aged', NOW, 'expert', '', 'kind', kind, 'avoid', avoid_home, 'decisions', 0)
  redis.call('HINCRBY', K.stats, 'submitted', 1)
  audit('submit', case_id, 'spec=' .. specialty .. ';site=' .. site .. ';prio=' .. priority .. ';weight=' .. weight_text ..
    ';kind=' .. kind)
end
local f = case_fields(case_key)
if not f then return {'skip', '', 'missing', '0'} end
local avoid = f.avoid
local why = {}
if mode ~= 'submit' then
  if f.state ~= 'waiting' then return {'skip', '', f.state, '0'} end
  if f.level ~= level then return {'stale', '', tostring(f.level), '0'} end
end
local w = f.weight
local factor = 1
if f.eprio == 0 then factor = 1 + tonumber(A.stat_margin) end
local conflict_rule = A.conflict_rule == '1'
-- Work in hand is capped in cases too: the rest waits here, in priority order, for whoever
-- frees up first (short personal queues keep utilisation even, and a waiting STAT case goes
-- to the first of the pool's readers to finish, not behind one reader's queue).
local max_open = tonumber(A.max_open)
local max_scan = tonumber(A.max_scan)
local best, best_ratio, best_recent, best_tie_break, best_pool = nil, 0, 0, 0, ''
local scanned, ties = 0, 0
for p = 1, npools do
  local pool = KEYS[K.first_pool + p - 1]
  local name = ARGV[first_pool_name + p - 1]
  local scope = string.sub(name, string.find(name, '@', 1, true) + 1)
  local offset = 0
  local stop = false
  while not stop and scanned < max_scan do
    local page = redis.call('ZRANGE', pool, '-inf', tostring(factor), 'BYSCORE', 'LIMIT', offset, 16, 'WITHSCORES')
    local n = #page / 2
    if n == 0 then break end
    local removed = 0
    for j = 1, #page, 2 do
      local id = page[j]
      local stored = tonumber(page[j + 1])
      -- Sorted by score: nothing further can beat the best; enough ties seen to pick from.
      if best and (stored > best_ratio + TIE or (ties >= 8 and stored >= best_ratio - TIE)) then stop = true break end
      scanned = scanned + 1
      local available_until = tonumber(redis.call('HGET', K.available_until, id) or '0')
      local credential = redis.call('HGET', K.cred, id .. '|' .. scope)
      if available_until <= NOW or not credential or (credential ~= '0' and tonumber(credential) <= NOW) then
        -- Lazy pruning: off shift, heartbeat lapsed, licence or credential expired.
        redis.call('ZREM', pool, id)
        removed = removed + 1
        if available_until <= NOW then why[#why + 1] = id .. '=unavailable' else why[#why + 1] = id .. '=credential' end
      else
        local r, load, cap = ratio(id)
        if r > stored + TIE then redis.call('ZADD', pool, r + jitter(id), id) end
        local reason = nil
        if string.find(f.excl, ' ' .. id .. ' ', 1, true) then
          reason = 'declined'
        elseif load + w > cap * factor + 1e-9
          or (max_open > 0 and tonumber(redis.call('HGET', K.open, id) or '0') >= max_open) then
          reason = 'full'
        elseif conflict_rule or avoid ~= '' then
          local home = redis.call('HGET', K.home, id)
          if conflict_rule and home == f.site then reason = 'conflict'
          elseif avoid ~= '' and home == avoid then reason = 'same_hospital' end
        end
        if reason then
          why[#why + 1] = id .. '=' .. reason
        else
          why[#why + 1] = id .. '=ranked'
          local rc = recent(id)
          local tb = jitter(id)
          if not best or r < best_ratio - TIE then ties = 1 else ties = ties + 1 end
          if not best or r < best_ratio - TIE
            or (r <= best_ratio + TIE and (rc < best_recent - 1e-9 or (rc <= best_recent + 1e-9 and tb < best_tie_break))) then
            best, best_ratio, best_recent, best_tie_break, best_pool = id, r, rc, tb, name
          end
        end
      end
      if scanned >= max_scan then stop = true break end
    end
    offset = offset + n - removed
  end
end
-- Keeps this decision's explanation on the case (see the header).
local function keep_explanation(outcome, expert)
  local n = redis.call('HINCRBY', case_key, 'decisions', 1)
  if n > 20 then n = 20 end
  redis.call('HSET', case_key, 'why' .. n,
    A.now .. '|' .. outcome .. '|' .. expert .. '|' .. f.level .. '|' .. scanned .. '|' .. table.concat(why, ' '))
end
if best then
  keep_explanation('offered', best)
  local new_load = redis.call('HINCRBY', K.load, best, w)
  redis.call('HINCRBY', K.open, best, 1)
  hold(best, case_id)
  local cap = tonumber(redis.call('HGET', K.cap, best))
  local score = score_of(new_load, cap) + jitter(best)
  for p = 1, npools do redis.call('ZADD', KEYS[K.first_pool + p - 1], 'XX', score, best) end
  redis.call('HSET', K.recent, best, (best_recent + 1) .. ':' .. NOW)
  local accept_by = NOW + tonumber(A.accept_timeout_ms)
  redis.call('HSET', case_key, 'state', 'offered', 'expert', best, 'offered_at', NOW, 'accept_by', accept_by)
  redis.call('HSETNX', case_key, 'first_offered_at', NOW)
  redis.call('HINCRBY', case_key, 'offers', 1)
  redis.call('ZREM', K.wait, case_id)
  local due = accept_by
  if f.escalated == 0 and f.deadline < due then due = f.deadline end
  redis.call('ZADD', K.timers, due, case_id)
  redis.call('HINCRBY', K.stats, 'offers', 1)
  audit('offer', case_id, 'expert=' .. best .. ';pool=' .. best_pool .. ';level=' .. f.level .. ';eprio=' .. f.eprio ..
    ';weight=' .. w .. ';load=' .. new_load .. ';cap=' .. cap .. ';scanned=' .. scanned, best)
  return {'assigned', best, redis.call('HGET', K.pools, best) or '', tostring(scanned)}
end
keep_explanation('waiting', '')
if f.state ~= 'waiting' then
  redis.call('HSET', case_key, 'state', 'waiting', 'waiting_since', NOW)
  f.state = 'waiting'
  audit('wait', case_id, 'level=' .. f.level .. ';eprio=' .. f.eprio)
end
enqueue_waiting(case_id, f)
return {'waiting', '', '', tostring(scanned)}
