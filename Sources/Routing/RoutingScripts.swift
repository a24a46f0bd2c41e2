import RedisClient

/// The router's Lua scripts. Each one is a single atomic step; every key it touches is in
/// KEYS (all under the `{rt}` hash tag).
///
/// KEYS layout shared by all scripts: 1...17 the static keys (`RoutingKeys.statics`),
/// 18 the case hash (or a placeholder), 19... pool ZSETs.
/// ARGV layout shared by all scripts: 1 now (ms), 2 actor, 3 audit max length,
/// 4 accept timeout ms, 5 STAT capacity margin, 6 conflict rule (1/0), 7 recent half-life ms,
/// 8 max candidates scanned, 9/10 widen fractions, 11/12 ageing caps ms (routine, urgent),
/// 13 random seed; script arguments from 14.
enum RoutingScripts {
    static let prelude = #"""
    local K_CAP, K_LOAD, K_RECENT, K_UNTIL, K_CRED, K_HOME, K_POOLS, K_WAIT, K_TIMERS = 1, 2, 3, 4, 5, 6, 7, 8, 9
    local K_AUDIT, K_WAKE, K_ESC, K_OPEN, K_NEXT, K_PROFILE, K_PRESENCE, K_STATS = 10, 11, 12, 13, 14, 15, 16, 17
    local NS = 17
    local NA = 13
    local NOW = tonumber(ARGV[1])
    local TIE = 5e-7

    -- The one place the audit trail is written (hash chaining hooks in here).
    local function audit(action, case, details)
      redis.call('XADD', KEYS[K_AUDIT], 'MAXLEN', '~', ARGV[3], '*',
        't', ARGV[1], 'actor', ARGV[2], 'action', action, 'case', case, 'details', details)
    end

    local function jitter(id)
      local h = tonumber(ARGV[13]) % 1000003
      for i = 1, #id do h = (h * 31 + string.byte(id, i)) % 1000003 end
      return (h % 1000) * 1e-10
    end

    local function ratio(id)
      local cap = tonumber(redis.call('HGET', KEYS[K_CAP], id) or '0')
      local load = tonumber(redis.call('HGET', KEYS[K_LOAD], id) or '0')
      if cap <= 0 then return 1e9, load, 0 end
      return load / cap, load, cap
    end

    local function recent(id)
      local v = redis.call('HGET', KEYS[K_RECENT], id)
      if not v then return 0 end
      local sep = string.find(v, ':', 1, true)
      local count = tonumber(string.sub(v, 1, sep - 1))
      local at = tonumber(string.sub(v, sep + 1))
      return count * math.pow(0.5, math.max(0, NOW - at) / tonumber(ARGV[7]))
    end

    local function unload(id, w)
      local left = redis.call('HINCRBY', KEYS[K_LOAD], id, -w)
      if left < 0 then redis.call('HSET', KEYS[K_LOAD], id, 0) end
      local open = redis.call('HINCRBY', KEYS[K_OPEN], id, -1)
      if open < 0 then redis.call('HSET', KEYS[K_OPEN], id, 0) end
      redis.call('LPUSH', KEYS[K_WAKE], 'expert:' .. id)
      redis.call('LTRIM', KEYS[K_WAKE], 0, 255)
    end

    local function caseFields(key)
      local v = redis.call('HMGET', key, 'state', 'expert', 'weight', 'deadline', 'escalated', 'submitted',
        'level', 'maxlevel', 'eprio', 'aged', 'accept_by', 'excl', 'site')
      if not v[1] then return nil end
      return { state = v[1], expert = v[2] or '', weight = tonumber(v[3]), deadline = tonumber(v[4]),
        escalated = tonumber(v[5]), submitted = tonumber(v[6]), level = tonumber(v[7]), maxlevel = tonumber(v[8]),
        eprio = tonumber(v[9]), aged = tonumber(v[10]), accept_by = tonumber(v[11] or '0'), excl = v[12] or ' ',
        site = v[13] }
    end

    -- Next time something happens to a waiting case: widening, ageing or its deadline.
    local function waitingDue(f)
      local t = nil
      local function consider(x) if not t or x < t then t = x end end
      if f.level < f.maxlevel then
        consider(f.submitted + math.floor((f.deadline - f.submitted) * tonumber(ARGV[9 + f.level])))
      end
      if f.eprio > 0 then
        local cap = tonumber(ARGV[11])
        if f.eprio == 1 then cap = tonumber(ARGV[12]) end
        consider(f.aged + cap)
      end
      if f.escalated == 0 then consider(f.deadline) end
      return t
    end

    -- Puts a case (already in state 'waiting' in its hash) on the wait queue and its timer.
    local function enqueueWaiting(caseID, f)
      redis.call('ZADD', KEYS[K_WAIT], f.eprio * 1e13 + f.submitted, caseID)
      local due = waitingDue(f)
      if due then redis.call('ZADD', KEYS[K_TIMERS], due, caseID) else redis.call('ZREM', KEYS[K_TIMERS], caseID) end
    end

    -- Takes a case away from its holder and makes it wait again, excluding the holder.
    local function requeue(caseKey, caseID, f)
      unload(f.expert, f.weight)
      f.excl = f.excl .. f.expert .. ' '
      redis.call('HSET', caseKey, 'state', 'waiting', 'expert', '', 'excl', f.excl, 'waiting_since', NOW)
      redis.call('HINCRBY', caseKey, 'declines', 1)
      f.state = 'waiting'
      enqueueWaiting(caseID, f)
      redis.call('LPUSH', KEYS[K_WAKE], 'case:' .. caseID)
    end

    local function escalate(caseID, f, caseKey, why)
      f.escalated = 1
      redis.call('HSET', caseKey, 'escalated', 1)
      redis.call('ZADD', KEYS[K_ESC], f.deadline, caseID)
      redis.call('HINCRBY', KEYS[K_STATS], 'escalations', 1)
      audit(why, caseID, 'state=' .. f.state .. ';level=' .. f.level .. ';expert=' .. f.expert)
    end
    """#

    /// Submit (mode `submit`: create the case, then route) or route a waiting case (mode `route`).
    /// ARGV 14 case id, 15 mode, 16 specialty, 17 site, 18 region, 19 level, 20 priority rank,
    /// 21 weight, 22 deadline, 23 max level, 24 number of pools, 25... pool names (spec@scope).
    /// Returns {outcome, expert, expert's pools, scanned}; outcome assigned | waiting |
    /// duplicate | skip | stale.
    static let assign = RedisScript(prelude + "\n" + #"""
    local caseKey = KEYS[NS + 1]
    local caseID = ARGV[NA + 1]
    local mode = ARGV[NA + 2]
    local level = tonumber(ARGV[NA + 6])
    if mode == 'submit' then
      local st = redis.call('HGET', caseKey, 'state')
      if st then return {'duplicate', redis.call('HGET', caseKey, 'expert') or '', st, '0'} end
      redis.call('HSET', caseKey, 'id', caseID, 'spec', ARGV[NA + 3], 'site', ARGV[NA + 4], 'region', ARGV[NA + 5],
        'prio', ARGV[NA + 7], 'eprio', ARGV[NA + 7], 'weight', ARGV[NA + 8], 'submitted', NOW, 'deadline', ARGV[NA + 9],
        'level', 0, 'maxlevel', ARGV[NA + 10], 'state', 'new', 'excl', ' ', 'declines', 0, 'offers', 0,
        'escalated', 0, 'aged', NOW, 'expert', '')
      redis.call('HINCRBY', KEYS[K_STATS], 'submitted', 1)
      audit('submit', caseID, 'spec=' .. ARGV[NA + 3] .. ';site=' .. ARGV[NA + 4] .. ';prio=' .. ARGV[NA + 7] .. ';weight=' .. ARGV[NA + 8])
    end
    local f = caseFields(caseKey)
    if not f then return {'skip', '', 'missing', '0'} end
    if mode ~= 'submit' then
      if f.state ~= 'waiting' then return {'skip', '', f.state, '0'} end
      if f.level ~= level then return {'stale', '', tostring(f.level), '0'} end
    end
    local w = f.weight
    local factor = 1
    if f.eprio == 0 then factor = 1 + tonumber(ARGV[5]) end
    local conflict = ARGV[6] == '1'
    local maxScan = tonumber(ARGV[8])
    local npools = tonumber(ARGV[NA + 11])
    local best, bestRatio, bestRecent, bestTB, bestPool = nil, 0, 0, 0, ''
    local scanned, ties = 0, 0
    for p = 1, npools do
      local pool = KEYS[NS + 1 + p]
      local name = ARGV[NA + 11 + p]
      local scope = string.sub(name, string.find(name, '@', 1, true) + 1)
      local offset = 0
      local stop = false
      while not stop and scanned < maxScan do
        local page = redis.call('ZRANGE', pool, '-inf', tostring(factor), 'BYSCORE', 'LIMIT', offset, 16, 'WITHSCORES')
        local n = #page / 2
        if n == 0 then break end
        local removed = 0
        for j = 1, #page, 2 do
          local id = page[j]
          local stored = tonumber(page[j + 1])
          -- Sorted by score: nothing further can beat the best; enough ties seen to pick from.
          if best and (stored > bestRatio + TIE or (ties >= 8 and stored >= bestRatio - TIE)) then stop = true break end
          scanned = scanned + 1
          local untilv = tonumber(redis.call('HGET', KEYS[K_UNTIL], id) or '0')
          local credv = redis.call('HGET', KEYS[K_CRED], id .. '|' .. scope)
          if untilv <= NOW or not credv or (credv ~= '0' and tonumber(credv) <= NOW) then
            -- Lazy pruning: off shift, heartbeat lapsed or credential expired.
            redis.call('ZREM', pool, id)
            removed = removed + 1
          else
            local r, load, cap = ratio(id)
            if r > stored + TIE then redis.call('ZADD', pool, r + jitter(id), id) end
            if load + w <= cap * factor + 1e-9
              and not string.find(f.excl, ' ' .. id .. ' ', 1, true)
              and not (conflict and redis.call('HGET', KEYS[K_HOME], id) == f.site) then
              local rc = recent(id)
              local tb = jitter(id)
              if not best or r < bestRatio - TIE then ties = 1 else ties = ties + 1 end
              if not best or r < bestRatio - TIE
                or (r <= bestRatio + TIE and (rc < bestRecent - 1e-9 or (rc <= bestRecent + 1e-9 and tb < bestTB))) then
                best, bestRatio, bestRecent, bestTB, bestPool = id, r, rc, tb, name
              end
            end
          end
          if scanned >= maxScan then stop = true break end
        end
        offset = offset + n - removed
      end
    end
    if best then
      local newLoad = redis.call('HINCRBY', KEYS[K_LOAD], best, w)
      redis.call('HINCRBY', KEYS[K_OPEN], best, 1)
      local cap = tonumber(redis.call('HGET', KEYS[K_CAP], best))
      local score = newLoad / cap + jitter(best)
      for p = 1, npools do redis.call('ZADD', KEYS[NS + 1 + p], 'XX', score, best) end
      redis.call('HSET', KEYS[K_RECENT], best, (bestRecent + 1) .. ':' .. NOW)
      local acceptBy = NOW + tonumber(ARGV[4])
      redis.call('HSET', caseKey, 'state', 'offered', 'expert', best, 'offered_at', NOW, 'accept_by', acceptBy)
      redis.call('HINCRBY', caseKey, 'offers', 1)
      redis.call('ZREM', KEYS[K_WAIT], caseID)
      local due = acceptBy
      if f.escalated == 0 and f.deadline < due then due = f.deadline end
      redis.call('ZADD', KEYS[K_TIMERS], due, caseID)
      redis.call('HINCRBY', KEYS[K_STATS], 'offers', 1)
      audit('offer', caseID, 'expert=' .. best .. ';pool=' .. bestPool .. ';level=' .. f.level .. ';eprio=' .. f.eprio ..
        ';weight=' .. w .. ';load=' .. newLoad .. ';cap=' .. cap)
      return {'assigned', best, redis.call('HGET', KEYS[K_POOLS], best) or '', tostring(scanned)}
    end
    if f.state ~= 'waiting' then
      redis.call('HSET', caseKey, 'state', 'waiting', 'waiting_since', NOW)
      f.state = 'waiting'
      audit('wait', caseID, 'level=' .. f.level .. ';eprio=' .. f.eprio)
    end
    enqueueWaiting(caseID, f)
    return {'waiting', '', '', tostring(scanned)}
    """#)

    /// Expert or coordinator actions. ARGV 14 action (accept | decline | release | complete |
    /// cancel), 15 case id, 16 expert (empty for cancel), 17 detail (reason code / report ref).
    /// Returns {'ok', expert, expert's pools} or {'err', code, state}.
    static let action = RedisScript(prelude + "\n" + #"""
    local caseKey = KEYS[NS + 1]
    local action = ARGV[NA + 1]
    local caseID = ARGV[NA + 2]
    local who = ARGV[NA + 3]
    local detail = ARGV[NA + 4]
    local f = caseFields(caseKey)
    if not f then return {'err', 'notFound', ''} end
    if action == 'cancel' then
      if f.state == 'completed' or f.state == 'cancelled' then return {'err', 'state', f.state} end
      local holder, pools = '', ''
      if f.state == 'offered' or f.state == 'accepted' then
        holder = f.expert
        unload(holder, f.weight)
        pools = redis.call('HGET', KEYS[K_POOLS], holder) or ''
      end
      redis.call('HSET', caseKey, 'state', 'cancelled', 'expert', '', 'closed_at', NOW)
      redis.call('ZREM', KEYS[K_WAIT], caseID)
      redis.call('ZREM', KEYS[K_TIMERS], caseID)
      redis.call('ZREM', KEYS[K_ESC], caseID)
      audit('cancel', caseID, 'reason=' .. detail .. ';expert=' .. holder)
      return {'ok', holder, pools}
    end
    if (f.state ~= 'offered' and f.state ~= 'accepted') or f.expert ~= who then
      return {'err', 'notHolder', f.state}
    end
    if action == 'accept' then
      if f.state ~= 'offered' then return {'err', 'state', f.state} end
      redis.call('HSET', caseKey, 'state', 'accepted', 'accepted_at', NOW)
      if f.escalated == 0 then redis.call('ZADD', KEYS[K_TIMERS], f.deadline, caseID) else redis.call('ZREM', KEYS[K_TIMERS], caseID) end
      audit('accept', caseID, 'expert=' .. who)
      return {'ok', who, ''}
    elseif action == 'decline' or action == 'release' then
      requeue(caseKey, caseID, f)
      redis.call('HINCRBY', KEYS[K_STATS], 'declines', 1)
      audit(action, caseID, 'expert=' .. who .. ';reason=' .. detail .. ';weight=' .. f.weight)
      return {'ok', who, redis.call('HGET', KEYS[K_POOLS], who) or ''}
    elseif action == 'complete' then
      if f.state ~= 'accepted' then return {'err', 'state', f.state} end
      unload(who, f.weight)
      redis.call('HSET', caseKey, 'state', 'completed', 'completed_at', NOW, 'report', detail, 'closed_at', NOW)
      redis.call('ZREM', KEYS[K_TIMERS], caseID)
      redis.call('ZREM', KEYS[K_ESC], caseID)
      redis.call('HINCRBY', KEYS[K_STATS], 'completed', 1)
      local late = 0
      if NOW > f.deadline then late = 1 end
      audit('complete', caseID, 'expert=' .. who .. ';report=' .. detail .. ';weight=' .. f.weight .. ';late=' .. late)
      return {'ok', who, redis.call('HGET', KEYS[K_POOLS], who) or ''}
    end
    return {'err', 'action', f.state}
    """#)

    /// A due timer. ARGV 14 case id. Returns {outcome, expert, expert's pools};
    /// outcome requeued (offer timed out) | reroute (waiting case widened or aged) |
    /// escalated | breach | gone | notdue.
    static let timer = RedisScript(prelude + "\n" + #"""
    local caseKey = KEYS[NS + 1]
    local caseID = ARGV[NA + 1]
    local due = redis.call('ZSCORE', KEYS[K_TIMERS], caseID)
    if not due or tonumber(due) > NOW then return {'notdue', '', ''} end
    local f = caseFields(caseKey)
    if not f then redis.call('ZREM', KEYS[K_TIMERS], caseID) return {'gone', '', ''} end
    if f.state == 'offered' then
      if NOW >= f.accept_by then
        local holder = f.expert
        if f.escalated == 0 and NOW >= f.deadline then escalate(caseID, f, caseKey, 'escalate') end
        requeue(caseKey, caseID, f)
        redis.call('HINCRBY', KEYS[K_STATS], 'timeouts', 1)
        audit('accept_timeout', caseID, 'expert=' .. holder .. ';weight=' .. f.weight)
        return {'requeued', holder, redis.call('HGET', KEYS[K_POOLS], holder) or ''}
      end
      if f.escalated == 0 and NOW >= f.deadline then escalate(caseID, f, caseKey, 'escalate') end
      redis.call('ZADD', KEYS[K_TIMERS], f.accept_by, caseID)
      return {'escalated', f.expert, ''}
    elseif f.state == 'accepted' then
      if f.escalated == 0 and NOW >= f.deadline then escalate(caseID, f, caseKey, 'sla_breach') end
      redis.call('ZREM', KEYS[K_TIMERS], caseID)
      return {'breach', f.expert, ''}
    elseif f.state == 'waiting' then
      local changed = false
      while f.level < f.maxlevel and NOW >= f.submitted + math.floor((f.deadline - f.submitted) * tonumber(ARGV[9 + f.level])) do
        f.level = f.level + 1
        changed = true
        audit('widen', caseID, 'level=' .. f.level)
      end
      while f.eprio > 0 do
        local cap = tonumber(ARGV[11])
        if f.eprio == 1 then cap = tonumber(ARGV[12]) end
        if NOW < f.aged + cap then break end
        f.aged = f.aged + cap
        f.eprio = f.eprio - 1
        changed = true
        audit('age', caseID, 'eprio=' .. f.eprio)
      end
      redis.call('HSET', caseKey, 'level', f.level, 'eprio', f.eprio, 'aged', f.aged)
      if f.escalated == 0 and NOW >= f.deadline then escalate(caseID, f, caseKey, 'escalate') end
      enqueueWaiting(caseID, f)
      if changed then redis.call('LPUSH', KEYS[K_WAKE], 'case:' .. caseID) end
      return {'reroute', '', ''}
    end
    redis.call('ZREM', KEYS[K_TIMERS], caseID)
    return {'gone', '', ''}
    """#)

    /// Re-scores an expert in the given pools (where a member) after its load changed.
    /// ARGV 14 expert.
    static let reindex = RedisScript(prelude + "\n" + #"""
    local id = ARGV[NA + 1]
    local r = ratio(id)
    local score = r + jitter(id)
    for i = NS + 2, #KEYS do redis.call('ZADD', KEYS[i], 'XX', score, id) end
    return 1
    """#)

    /// Roster and availability changes of one expert.
    /// ARGV 14 expert, 15 expected current pools string, 16 mode (upsert | avail | remove),
    /// 17 capacity, 18 home site, 19 available until, 20 next check, 21 new pools string,
    /// 22 new credentials "scope=expiry ...", 23 old credential scopes "scope ...",
    /// 24 profile JSON, 25 presence, 26 number of pool keys, 27... pool names (KEYS 19...).
    /// Returns {'ok', wasAvailable, isAvailable} or {'retry'} / {'busy'}.
    static let sync = RedisScript(prelude + "\n" + #"""
    local id = ARGV[NA + 1]
    local current = redis.call('HGET', KEYS[K_POOLS], id) or ''
    if current ~= ARGV[NA + 2] then return {'retry', current, ''} end
    local mode = ARGV[NA + 3]
    local wasUntil = tonumber(redis.call('HGET', KEYS[K_UNTIL], id) or '0')
    local wasAvailable = wasUntil > NOW
    local npools = tonumber(ARGV[NA + 13])
    for scope in string.gmatch(ARGV[NA + 10], '%S+') do redis.call('HDEL', KEYS[K_CRED], id .. '|' .. scope) end
    if mode == 'remove' then
      if tonumber(redis.call('HGET', KEYS[K_OPEN], id) or '0') > 0 then return {'busy', '', ''} end
      for i = 1, npools do redis.call('ZREM', KEYS[NS + 1 + i], id) end
      for _, k in ipairs({K_CAP, K_LOAD, K_RECENT, K_UNTIL, K_HOME, K_POOLS, K_OPEN, K_PROFILE, K_PRESENCE}) do
        redis.call('HDEL', KEYS[k], id)
      end
      redis.call('ZREM', KEYS[K_NEXT], id)
      audit('expert_remove', '', 'expert=' .. id)
      return {'ok', '', ''}
    end
    local oldCap = tonumber(redis.call('HGET', KEYS[K_CAP], id) or '0')
    local cap = tonumber(ARGV[NA + 4])
    redis.call('HSET', KEYS[K_CAP], id, cap)
    if ARGV[NA + 5] ~= '' then redis.call('HSET', KEYS[K_HOME], id, ARGV[NA + 5]) else redis.call('HDEL', KEYS[K_HOME], id) end
    local untilv = tonumber(ARGV[NA + 6])
    redis.call('HSET', KEYS[K_UNTIL], id, untilv)
    redis.call('ZADD', KEYS[K_NEXT], ARGV[NA + 7], id)
    redis.call('HSET', KEYS[K_POOLS], id, ARGV[NA + 8])
    if ARGV[NA + 11] ~= '' then redis.call('HSET', KEYS[K_PROFILE], id, ARGV[NA + 11]) end
    if ARGV[NA + 12] ~= '' then redis.call('HSET', KEYS[K_PRESENCE], id, ARGV[NA + 12]) end
    if not redis.call('HGET', KEYS[K_LOAD], id) then redis.call('HSET', KEYS[K_LOAD], id, 0) end
    local creds = {}
    for entry in string.gmatch(ARGV[NA + 9], '%S+') do
      local eq = string.find(entry, '=', 1, true)
      local scope, expiry = string.sub(entry, 1, eq - 1), string.sub(entry, eq + 1)
      creds[scope] = expiry
      redis.call('HSET', KEYS[K_CRED], id .. '|' .. scope, expiry)
    end
    local wanted = {}
    for name in string.gmatch(ARGV[NA + 8], '%S+') do wanted[name] = true end
    local r = ratio(id)
    local score = r + jitter(id)
    local available = untilv > NOW
    for i = 1, npools do
      local name = ARGV[NA + 13 + i]
      local scope = string.sub(name, string.find(name, '@', 1, true) + 1)
      local expiry = creds[scope]
      local credOK = expiry and (expiry == '0' or tonumber(expiry) > NOW)
      if wanted[name] and available and credOK then
        redis.call('ZADD', KEYS[NS + 1 + i], score, id)
      else
        redis.call('ZREM', KEYS[NS + 1 + i], id)
      end
    end
    if mode == 'upsert' then
      audit('expert_upsert', '', 'expert=' .. id .. ';cap=' .. cap .. ';available=' .. tostring(available))
    elseif available ~= wasAvailable then
      if available then audit('expert_available', '', 'expert=' .. id) else audit('expert_unavailable', '', 'expert=' .. id) end
    end
    if available and (not wasAvailable or cap > oldCap) then
      redis.call('LPUSH', KEYS[K_WAKE], 'expert:' .. id)
      redis.call('LTRIM', KEYS[K_WAKE], 0, 255)
    end
    return {'ok', tostring(wasAvailable), tostring(available)}
    """#)
}
