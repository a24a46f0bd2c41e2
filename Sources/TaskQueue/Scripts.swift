import RedisClient

/// The Lua scripts behind every state change of a task. Each runs atomically on the server.
///
/// All scripts receive the same first 14 keys (see `QueueKeys.scriptKeys`); scripts that need
/// more (result keys, the caller's effect keys) get them after those, so every key a script
/// touches is declared in KEYS and all of them share the queue's hash tag.
///
/// **Fencing by entry.** Every delivery of a task is a fresh lane entry: a retry, a reclaim
/// after lease expiry and a hand-back each append a new entry and acknowledge the old one. The
/// entry id is therefore the claim's fencing token, and a claim is a bare `XREADGROUP`: the
/// group's pending-entries list (PEL) records who holds the entry and since when, which is the
/// lease (renewed with `XCLAIM … JUSTID`, reaped with `XPENDING … IDLE`). Claims write nothing
/// per task, which is what makes them cheap.
///
/// A task's record in the `state` hash (field = task key) is short text while the task has a
/// lane entry, since the entry holds the rest:
///   `q <fence> <lane index>`     queued or claimed; the fence is its current lane entry id
///   `c <fence> <completion ms>`  completed: a tombstone for idempotent enqueue, listed in completion
///                                order in `completed` until `completedRetention` has passed
///   `d` newline MessagePack       delayed for a retry: no entry, so the record keeps everything
/// Scripts see a record decoded as one table (a queued task's fields are read from its entry):
///   [1] status q/d/c   [2] fence ('' when not in a lane)
///   [3] deliveries that have ended (failed, expired; hand-backs do not count)
///   [4] failures: handler errors so far    [5] max attempts     [6] lane index (1 stat … 4 bulk)
///   [7] fan-in group id ('' when none)     [8] first enqueue time (ms)    [9] payload
/// A completion checks its claim by comparing the whole `q` record, without decoding anything.
///
/// A lane entry carries what a claim needs: `k` task key, `p` payload, `m` "delivery failures
/// maxAttempts firstEnqueueMs", `g` fan-in group (only when there is one). Waiting and pending
/// entries are never trimmed, so the entry a `q` record names is there when a script needs it.
/// Claims read entries with a plain `XREADGROUP` from the client: a script only plans how many
/// to take from which lane (each entry passed through a script costs ~5 µs of conversion to
/// and from Lua tables).
///
/// Acknowledged entries are not deleted one by one (`XDEL` of the oldest entry rescans its
/// node on Redis 7, ~8 µs each): the acknowledged head of a lane is trimmed with
/// `XTRIM MINID ~`, which drops whole nodes, so a lane holds at most about one node of
/// finished entries beyond its live ones.

enum Scripts {
    static let prelude = #"""
    local G = 'workers'
    local LANES = {'stat', 'urgent', 'routine', 'bulk'}
    local K_STATE, K_DEAD, K_DONE, K_GROUPS, K_GROUPS_AGE, K_GROUPS_LEFT = KEYS[5], KEYS[10], KEYS[11], KEYS[12], KEYS[13], KEYS[14]
    local function now_ms()
      local t = redis.call('TIME')
      return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    -- A record as a table (see the format above); a queued task's counters, group and payload
    -- are read from its lane entry.
    local function decode(v)
      local status = string.sub(v, 1, 1)
      if status == 'c' then
        local fence, ms = string.match(v, '^c (%S+) (%d+)$')
        return {'c', fence, tonumber(ms)}
      elseif status == 'q' then
        local fence, lane = string.match(v, '^q (%S+) (%d)$')
        lane = tonumber(lane)
        local r = {'q', fence, 0, 0, 1, lane, '', 0, ''}
        local e = redis.call('XRANGE', KEYS[lane], fence, fence)
        local f = e[1] and e[1][2] or {}
        for j = 1, #f, 2 do
          local name, value = f[j], f[j+1]
          if name == 'm' then
            local d, failures, ma, first = string.match(value, '^(%d+) (%d+) (%d+) (%d+)$')
            if d then r[3], r[4], r[5], r[8] = tonumber(d) - 1, tonumber(failures), tonumber(ma), tonumber(first) end
          elseif name == 'g' then r[7] = value
          elseif name == 'p' then r[9] = value end
        end
        return r
      end
      local b = cmsgpack.unpack(string.sub(v, 3))
      return {'d', '', b[1], b[2], b[3], b[4], b[5], b[6], b[7]}
    end
    local function encode(r)
      if r[1] == 'c' then return 'c ' .. r[2] .. ' ' .. string.format('%d', r[3]) end
      if r[1] == 'q' then return 'q ' .. r[2] .. ' ' .. r[6] end
      return 'd\n' .. cmsgpack.pack({r[3], r[4], r[5], r[6], r[7], r[8], r[9]})
    end
    local function load(key)
      local v = redis.call('HGET', K_STATE, key)
      if not v then return nil end
      return decode(v)
    end
    local function save(key, r) redis.call('HSET', K_STATE, key, encode(r)) end
    local function id_lt(a, b)
      local am, as = string.match(a, '^(%d+)-(%d+)$')
      local bm, bs = string.match(b, '^(%d+)-(%d+)$')
      am, bm = tonumber(am), tonumber(bm)
      if am ~= bm then return am < bm end
      return tonumber(as) < tonumber(bs)
    end
    local function append(lane, key, payload, meta, gid)
      if gid ~= '' then return redis.call('XADD', KEYS[lane], '*', 'k', key, 'p', payload, 'm', meta, 'g', gid) end
      return redis.call('XADD', KEYS[lane], '*', 'k', key, 'p', payload, 'm', meta)
    end
    -- A new delivery: appends an entry (with the payload in r[9]) to the task's lane and makes
    -- it the fence. A lane created here has no group yet: the next claim creates it at id 0.
    local function push(key, r)
      r[1] = 'q'
      r[2] = append(r[6], key, r[9], string.format('%d %d %d %d', r[3] + 1, r[4], r[5], r[8]), r[7])
      save(key, r)
      return r[2]
    end
    -- Ends the current delivery: the entry leaves the PEL (and is trimmed later).
    local function unlink(r)
      if r[2] ~= '' then
        redis.call('XACK', KEYS[r[6]], G, r[2])
        r[2] = ''
      end
    end
    -- Drops acknowledged entries from the head of lane i: those older than both its oldest
    -- pending entry and `upto`, an entry known to be delivered (whole nodes only).
    local function trim(i, upto)
      local p = redis.call('XPENDING', KEYS[i], G)
      local minid = upto
      if p[1] > 0 and id_lt(p[2], upto) then minid = p[2] end
      redis.call('XTRIM', KEYS[i], 'MINID', '~', minid)
    end
    -- 'r' for a task whose entry is claimed, else its record's status.
    local function status_of(r)
      if r[1] == 'q' and r[2] ~= '' then
        local p = redis.pcall('XPENDING', KEYS[r[6]], G, r[2], r[2], 1)
        if type(p) == 'table' and not p.err and #p > 0 then return 'r' end
      end
      return r[1]
    end
    local function dead_letter(key, r, reason, err, cap, now)
      redis.call('XADD', K_DEAD, 'MAXLEN', '~', cap, '*', 'key', key, 'lane', LANES[r[6]], 'reason', reason,
        'error', err, 'deliveries', r[3], 'failures', r[4], 'max_attempts', r[5], 'group', r[7],
        'enqueued_ms', r[8], 'dead_ms', now, 'payload', r[9] or '')
      redis.call('HDEL', K_STATE, key)
    end
    -- Idempotent enqueue of one task: {1, entry id} new, {0, status} known, {-1, 'nogroup'}.
    -- strict = false drops a group that no longer exists instead of refusing.
    local function enqueue(key, payload, lane, ma, gid, now, strict)
      local v = redis.call('HGET', K_STATE, key)
      if v then return {0, status_of(decode(v))} end
      if gid ~= '' and redis.call('HEXISTS', K_GROUPS, gid) == 0 then
        if strict then return {-1, 'nogroup'} end
        gid = ''
      end
      return {1, push(key, {'q', '', 0, 0, ma, lane, gid, now, payload})}
    end
    """#

    private static func make(_ body: String) -> RedisScript { RedisScript(prelude + "\n" + body) }

    /// ARGV: n, then per task: key, payload, lane index, max attempts, group id ('' none).
    /// Returns one value per task: its entry id (new), '=' and its status letter (known), or
    /// '!' (its fan-in group does not exist). One HMGET for the idempotency check and one HSET
    /// for the new records.
    static let enqueue = make(#"""
    local n = tonumber(ARGV[1])
    local now = now_ms()
    local first = ' ' .. string.format('%d', now)
    local keys = {}
    for j = 1, n do keys[j] = ARGV[2 + (j - 1) * 5] end
    local known = redis.call('HMGET', K_STATE, unpack(keys))
    local fresh, groups, writes, out = {}, {}, {}, {}
    local w, lastMa, meta = 0, nil, nil
    for j = 1, n do
      local a = 2 + (j - 1) * 5
      local key, gid = ARGV[a], ARGV[a+4]
      if known[j] then
        out[j] = '=' .. status_of(decode(known[j]))
      elseif fresh[key] then
        out[j] = '=q'
      else
        if gid ~= '' and groups[gid] == nil then groups[gid] = redis.call('HEXISTS', K_GROUPS, gid) == 1 end
        if gid ~= '' and not groups[gid] then
          out[j] = '!'
        else
          local lane, ma = ARGV[a+2], ARGV[a+3]
          -- Tasks of one batch mostly share their max attempts: build the meta text once.
          if ma ~= lastMa then lastMa, meta = ma, '1 0 ' .. ma .. first end
          local id = append(tonumber(lane), key, ARGV[a+1], meta, gid)
          fresh[key] = true
          writes[w+1] = key
          writes[w+2] = 'q ' .. id .. ' ' .. lane
          w = w + 2
          out[j] = id
        end
      end
    end
    if w > 0 then redis.call('HSET', K_STATE, unpack(writes)) end
    return out
    """#)

    /// ARGV: group id, expected count, next key, next payload, next lane, next max attempts, next group.
    /// Returns 1 created, 0 already exists, 2 count was 0 so the next task was enqueued at once.
    static let expectGroup = make(#"""
    local gid, n = ARGV[1], tonumber(ARGV[2])
    if redis.call('HEXISTS', K_GROUPS, gid) == 1 then return 0 end
    local now = now_ms()
    if n <= 0 then
      enqueue(ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], now, false)
      return 2
    end
    redis.call('HSET', K_GROUPS, gid, cmsgpack.pack({ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]}))
    redis.call('HSET', K_GROUPS_LEFT, gid, ARGV[2])
    redis.call('ZADD', K_GROUPS_AGE, now, gid)
    return 1
    """#)

    /// Plans a claim: ARGV want, aging cap ms of lanes 2..4 (0 = none).
    /// Returns {now, {lane index, count, …}, tails}: how many waiting entries to take from
    /// which lane, in that order; the caller reads them with `XREADGROUP … COUNT count`.
    /// Overdue work of a lower lane (waiting longer than its cap) comes first, then lanes by
    /// priority. When nothing waits, tails holds the 4 lane tail ids to block on.
    static let claimPlan = make(#"""
    local want = tonumber(ARGV[1])
    local now = now_ms()
    local waiting, last = {0, 0, 0, 0}, {}
    for i = 1, 4 do
      local groups = redis.pcall('XINFO', 'GROUPS', KEYS[i])
      if type(groups) == 'table' and not groups.err then
        for _, g in ipairs(groups) do
          local name, id, lag
          for j = 1, #g, 2 do
            local f = g[j]
            if f == 'name' then name = g[j+1] elseif f == 'last-delivered-id' then id = g[j+1] elseif f == 'lag' then lag = g[j+1] end
          end
          if name == G then
            last[i] = id
            -- Redis cannot always tell the lag (after deletions): count what a claim could take.
            if type(lag) ~= 'number' then lag = #redis.call('XRANGE', KEYS[i], '(' .. id, '+', 'COUNT', want) end
            waiting[i] = lag
          end
        end
        if not last[i] then
          -- The lane exists but has no group yet (created by an enqueue): create it at the start.
          redis.call('XGROUP', 'CREATE', KEYS[i], G, '0')
          last[i] = '0-0'
          waiting[i] = redis.call('XLEN', KEYS[i])
        end
      elseif type(groups) == 'table' and string.find(groups.err, 'no such key', 1, true) then
        -- A lane that does not exist yet is created empty with its group: a failed call costs
        -- ~4 µs in a script, and every later plan would pay it again for each idle lane.
        redis.call('XGROUP', 'CREATE', KEYS[i], G, '0', 'MKSTREAM')
        last[i] = '0-0'
      end
    end
    local remaining = want
    local taken = {0, 0, 0, 0}
    local plan = {}
    local function take(i, n)
      n = math.min(n, remaining, waiting[i] - taken[i])
      if n <= 0 then return end
      taken[i] = taken[i] + n
      remaining = remaining - n
      if plan[#plan - 1] == i then plan[#plan] = plan[#plan] + n
      else plan[#plan+1] = i plan[#plan+1] = n end
    end
    -- Aging: work that waited longer than its lane's cap goes before newer higher-lane work.
    for i = 2, 4 do
      local cap = tonumber(ARGV[i])
      if remaining > 0 and cap > 0 and waiting[i] > 0 and now - cap > 0 then
        take(i, #redis.call('XRANGE', KEYS[i], '(' .. last[i], tostring(now - cap), 'COUNT', remaining))
      end
    end
    for i = 1, 4 do take(i, waiting[i]) end
    local tails = {}
    if remaining == want then
      for i = 1, 4 do
        local t = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
        tails[i] = (t[1] and t[1][1]) or '0-0'
      end
    end
    return {now, plan, tails}
    """#)

    /// Completes one or more claimed tasks; each is accepted or refused on its own.
    /// KEYS[15…]: result keys (of tasks with a result), then effect keys.
    /// ARGV: n, result ttl ms, the n task keys, then per task: fence, lane index, group id,
    /// result key index (0 = no result), [result,] effect count, then per effect: command,
    /// key index, argument count, arguments…
    /// Returns {codes, {task index, next task key, …}}: one code per task, o accepted, a again
    /// (this claim had completed already), f fenced, u unknown, s other state, e effect failed,
    /// x effect not allowed; then the fan-in tasks that completions enqueued.
    /// A claim is current when its record's header is `q <fence>`; lane and group then come
    /// from the caller (they were read from that same entry). A task's effects run first
    /// (pcall): if one fails the task is refused ('effect-failed') before its state changes.
    static let complete = make(#"""
    local allowed = {HSET=1, HSETNX=1, HINCRBY=1, HDEL=1, SADD=1, SREM=1, SET=1, INCRBY=1, DEL=1,
      RPUSH=1, LPUSH=1, ZADD=1, ZINCRBY=1, EXPIRE=1, PEXPIRE=1, XADD=1}
    local n, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
    local stored = redis.call('HMGET', K_STATE, unpack(ARGV, 3, 2 + n))
    local now = now_ms()
    local stamp = ' ' .. string.format('%d', now)
    local a = 3 + n
    local writes, done, codes, nexts, acks, newest, seen = {}, {}, {}, {}, {}, {}, {}
    local function flush()
      if #writes > 0 then redis.call('HSET', K_STATE, unpack(writes)) writes = {} end
    end
    for j = 1, n do
      local key, fence, laneText, gid, rki = ARGV[2 + j], ARGV[a], ARGV[a+1], ARGV[a+2], tonumber(ARGV[a+3])
      local lane = tonumber(laneText)
      a = a + 4
      local result
      if rki > 0 then result = ARGV[a] a = a + 1 end
      local ne = tonumber(ARGV[a])
      a = a + 1
      local effects = a
      for _ = 1, ne do a = a + 3 + tonumber(ARGV[a+2]) end
      local code = 'o'
      local v = seen[key] or stored[j]
      if v == 'q ' .. fence .. ' ' .. laneText then
        local ok, e = true, effects
        for _ = 1, ne do
          local c = tonumber(ARGV[e+2])
          if not allowed[ARGV[e]] then ok, code = false, 'x' break end
          local r = redis.pcall(ARGV[e], KEYS[tonumber(ARGV[e+1])], unpack(ARGV, e + 3, e + 2 + c))
          if type(r) == 'table' and r.err then ok, code = false, 'e' break end
          e = e + 3 + c
        end
        if ok then
          local tomb = 'c ' .. fence .. stamp
          seen[key] = tomb
          writes[#writes+1] = key
          writes[#writes+1] = tomb
          done[#done+1] = key
          local ids = acks[lane]
          if not ids then ids = {} acks[lane] = ids end
          ids[#ids+1] = fence
          -- Any acknowledged entry bounds the trim safely (all before it were delivered); the
          -- last one is about the newest, and comparing ids here would cost ~1 µs per task.
          newest[lane] = fence
          if result then
            if ttl > 0 then redis.call('SET', KEYS[rki], result, 'PX', ttl) else redis.call('SET', KEYS[rki], result) end
          end
          if gid ~= '' then
            local left = redis.call('HINCRBY', K_GROUPS_LEFT, gid, '-1')
            if left <= 0 then
              redis.call('HDEL', K_GROUPS_LEFT, gid)
              local gv = left == 0 and redis.call('HGET', K_GROUPS, gid)
              if gv then
                local g = cmsgpack.unpack(gv)
                redis.call('HDEL', K_GROUPS, gid)
                redis.call('ZREM', K_GROUPS_AGE, gid)
                flush()
                local r = enqueue(g[1], g[2], g[3], g[4], g[5], now, false)
                if r[1] == 1 then
                  nexts[#nexts+1] = j
                  nexts[#nexts+1] = g[1]
                end
              end
            end
          end
        end
      elseif not v then
        code = 'u'
      else
        local rec = decode(v)
        if rec[2] ~= fence then code = 'f'
        elseif rec[1] == 'c' then code = 'a'
        else code = 's' end
      end
      codes[j] = code
    end
    flush()
    if #done > 0 then redis.call('RPUSH', K_DONE, unpack(done)) end
    for lane, ids in pairs(acks) do
      redis.call('XACK', KEYS[lane], G, unpack(ids))
      trim(lane, newest[lane])
    end
    return {table.concat(codes), nexts}
    """#)

    /// ARGV: key, fence, error text, delay ms (negative = do not retry), dead-letter cap, reason if dead.
    /// Returns {1, due ms} retrying, {2} dead-lettered, {0, reason} refused.
    static let fail = make(#"""
    local key, fence, delay = ARGV[1], ARGV[2], tonumber(ARGV[4])
    local rec = load(key)
    if not rec then return {0, 'unknown'} end
    if rec[2] ~= fence then return {0, 'fenced'} end
    if rec[1] ~= 'q' then return {0, 'state-' .. rec[1]} end
    local now = now_ms()
    rec[3] = rec[3] + 1
    rec[4] = rec[4] + 1
    unlink(rec)
    if delay < 0 or rec[4] >= rec[5] then
      local reason = ARGV[6]
      if delay >= 0 then reason = 'attempts-exhausted' end
      dead_letter(key, rec, reason, ARGV[3], tonumber(ARGV[5]), now)
      return {2}
    end
    rec[1] = 'd'
    save(key, rec)
    redis.call('ZADD', KEYS[5 + rec[6]], now + delay, key)
    return {1, now + delay}
    """#)

    /// Lease renewal: ARGV consumer, then key, fence, lane index triples. Each held entry's
    /// idle time is reset (`XCLAIM … JUSTID`, which does not count a delivery). Returns the
    /// keys whose entry is no longer held by the consumer (reclaimed, handed back or finished).
    static let renew = make(#"""
    local consumer = ARGV[1]
    local byLane, keyOf = {}, {}
    for j = 2, #ARGV, 3 do
      local lane = tonumber(ARGV[j+2])
      byLane[lane] = byLane[lane] or {}
      byLane[lane][#byLane[lane] + 1] = ARGV[j+1]
      keyOf[ARGV[j+1]] = ARGV[j]
    end
    local held = {}
    for lane, ids in pairs(byLane) do
      local args = {'XCLAIM', KEYS[lane], G, consumer, '0'}
      for _, id in ipairs(ids) do args[#args+1] = id end
      args[#args+1] = 'JUSTID'
      local r = redis.pcall(unpack(args))
      if type(r) == 'table' and r.err then r = {} end
      for _, id in ipairs(r) do held[id] = true end
    end
    local lost = {}
    for id, key in pairs(keyOf) do
      if not held[id] then lost[#lost+1] = key end
    end
    return lost
    """#)

    /// Hand-back on shutdown: ARGV key, fence pairs. The tasks go back to their lanes at once
    /// (the delivery does not count against the poison limit). Returns the number handed back.
    static let release = make(#"""
    local n = 0
    for j = 1, #ARGV, 2 do
      local key, fence = ARGV[j], ARGV[j+1]
      local rec = load(key)
      if rec and rec[1] == 'q' and rec[2] == fence then
            unlink(rec)
        push(key, rec)
        n = n + 1
      end
    end
    return n
    """#)

    /// Lease expiry: ARGV lease ms, max deliveries, limit per lane, dead-letter cap.
    /// Entries idle in the PEL for a lease go back to their lanes as new deliveries (or to the
    /// dead letters when they keep expiring). Returns {requeued, dead-lettered, now, next expiry ms or -1}.
    static let reclaim = make(#"""
    local lease, maxDeliveries, limit, cap = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
    local leaseMs = tonumber(lease)
    local now = now_ms()
    local requeued, dead, nextExpiry = 0, 0, -1
    for i = 1, 4 do
      local expired = redis.pcall('XPENDING', KEYS[i], G, 'IDLE', lease, '-', '+', limit)
      if type(expired) == 'table' and not expired.err then
        for _, p in ipairs(expired) do
          local id = p[1]
          local e = redis.call('XRANGE', KEYS[i], id, id)
          local key
          if e[1] then
            local f = e[1][2]
            for j = 1, #f, 2 do if f[j] == 'k' then key = f[j+1] end end
          end
          local rec = key and load(key)
          if rec and rec[1] == 'q' and rec[2] == id then
            unlink(rec)
            rec[3] = rec[3] + 1
            if rec[3] >= maxDeliveries then
              dead_letter(key, rec, 'poison', 'lease expired on each of ' .. rec[3] .. ' deliveries', cap, now)
              dead = dead + 1
            else
              push(key, rec)
              requeued = requeued + 1
            end
          else
            -- An entry no record points at any more: just release it.
            redis.call('XACK', KEYS[i], G, id)
          end
        end
        for _, p in ipairs(redis.call('XPENDING', KEYS[i], G, '-', '+', 1000)) do
          local at = now + leaseMs - p[3]
          if nextExpiry < 0 or at < nextExpiry then nextExpiry = at end
        end
      end
    end
    return {requeued, dead, now, nextExpiry}
    """#)

    /// Moves due retries back to their lanes. ARGV: limit per lane.
    /// Returns {promoted, now, next due ms or -1}.
    static let promote = make(#"""
    local limit = tonumber(ARGV[1])
    local now = now_ms()
    local promoted = 0
    local nextDue = -1
    for i = 1, 4 do
      local z = KEYS[5 + i]
      local due = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, limit)
      for _, key in ipairs(due) do
        redis.call('ZREM', z, key)
        local rec = load(key)
        if rec and rec[1] == 'd' then
          push(key, rec)
          promoted = promoted + 1
        end
      end
      local nxt = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
      if nxt[2] then
        local s = tonumber(nxt[2])
        if nextDue < 0 or s < nextDue then nextDue = s end
      end
    end
    return {promoted, now, nextDue}
    """#)

    /// Prunes what would otherwise grow: completion tombstones past the idempotency window,
    /// fan-in groups past their TTL, dead letters past retention, departed consumers, and the
    /// acknowledged heads of the lanes.
    /// ARGV: done retention ms, group ttl ms, dead retention ms, consumer idle ms, limit.
    static let housekeeping = make(#"""
    local now = now_ms()
    local limit = tonumber(ARGV[5])
    local pruned, groups, consumers = 0, 0, 0
    -- The completion log is in completion order: prune from its head until a tombstone is
    -- still inside the window. Entries whose record is no longer a tombstone are dropped.
    local cutoff = now - tonumber(ARGV[1])
    local head = redis.call('LRANGE', K_DONE, 0, limit - 1)
    local popped = 0
    for _, key in ipairs(head) do
      local rec = load(key)
      if rec and rec[1] == 'c' then
        if (rec[3] or 0) > cutoff then break end
        redis.call('HDEL', K_STATE, key)
        pruned = pruned + 1
      end
      popped = popped + 1
    end
    if popped > 0 then redis.call('LTRIM', K_DONE, popped, -1) end
    for _, gid in ipairs(redis.call('ZRANGEBYSCORE', K_GROUPS_AGE, '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, limit)) do
      redis.call('HDEL', K_GROUPS, gid)
      redis.call('HDEL', K_GROUPS_LEFT, gid)
      redis.call('ZREM', K_GROUPS_AGE, gid)
      groups = groups + 1
    end
    local minid = now - tonumber(ARGV[3])
    if minid > 0 and redis.call('EXISTS', K_DEAD) == 1 then
      redis.call('XTRIM', K_DEAD, 'MINID', '~', minid)
    end
    local idle = tonumber(ARGV[4])
    for i = 1, 4 do
      local info = redis.pcall('XINFO', 'GROUPS', KEYS[i])
      if type(info) == 'table' and not info.err then
        for _, g in ipairs(info) do
          local name, last
          for j = 1, #g, 2 do
            if g[j] == 'name' then name = g[j+1] elseif g[j] == 'last-delivered-id' then last = g[j+1] end
          end
          if name == G and last ~= '0-0' then trim(i, last) end
        end
      end
      local cs = redis.pcall('XINFO', 'CONSUMERS', KEYS[i], G)
      if type(cs) == 'table' and not cs.err then
        for _, c in ipairs(cs) do
          local name, pending, cidle
          for j = 1, #c, 2 do
            if c[j] == 'name' then name = c[j+1] elseif c[j] == 'pending' then pending = c[j+1] elseif c[j] == 'idle' then cidle = c[j+1] end
          end
          if name and pending == 0 and cidle and cidle > idle then
            redis.call('XGROUP', 'DELCONSUMER', KEYS[i], G, name)
            consumers = consumers + 1
          end
        end
      end
    end
    return {pruned, groups, consumers}
    """#)

    /// ARGV: dead-letter entry id. Re-enqueues it with fresh counters and removes the entry.
    /// Returns the enqueue reply ({1, id} / {0, status}) or {-2, 'missing'}.
    static let retryDead = make(#"""
    local e = redis.call('XRANGE', K_DEAD, ARGV[1], ARGV[1])
    if #e == 0 then return {-2, 'missing'} end
    local f = {}
    local fields = e[1][2]
    for j = 1, #fields, 2 do f[fields[j]] = fields[j+1] end
    local lane = 3
    for i = 1, 4 do if LANES[i] == f['lane'] then lane = i end end
    local r = enqueue(f['key'], f['payload'] or '', lane, tonumber(f['max_attempts'] or 5), f['group'] or '', now_ms(), false)
    redis.call('XDEL', K_DEAD, ARGV[1])
    return r
    """#)

    /// ARGV: key. The task's status code (q, r, d, c) or '' when unknown.
    static let status = make(#"""
    local rec = load(ARGV[1])
    if not rec then return '' end
    return status_of(rec)
    """#)
}
