import RedisClient

/// The Lua scripts behind every state change of a task. Each runs atomically on the server.
///
/// All scripts receive the same first 15 keys (see `QueueKeys.base`); scripts that need more
/// (the result key, the caller's effect keys) get them after those, so every key a script
/// touches is declared in KEYS and all of them share the queue's hash tag.
///
/// A task's live record is a MessagePack array in the `state` hash, field = task key:
///   [1] status: q (queued in a lane), r (running, leased), d (delayed for retry), c (completed)
///   [2] fence: bumped by every claim, retry, reclaim and hand-back
///   [3] deliveries: claims so far        [4] failures: handler errors so far
///   [5] max attempts                     [6] lane index (1 stat … 4 bulk)
///   [7] current stream entry id ('' when not in a lane)
///   [8] fan-in group id ('' when none)   [9] first enqueue time (ms)
enum Scripts {
    static let prelude = #"""
    local G = 'workers'
    local LANES = {'stat', 'urgent', 'routine', 'bulk'}
    local K_STATE, K_PAYLOAD, K_LEASES, K_DEAD, K_DONE, K_GROUPS, K_GROUPS_AGE = KEYS[5], KEYS[6], KEYS[7], KEYS[12], KEYS[13], KEYS[14], KEYS[15]
    local function now_ms()
      local t = redis.call('TIME')
      return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    local function load(key)
      local v = redis.call('HGET', K_STATE, key)
      if not v then return nil end
      return cmsgpack.unpack(v)
    end
    local function save(key, r) redis.call('HSET', K_STATE, key, cmsgpack.pack(r)) end
    local function ensure_group(lane)
      if redis.call('EXISTS', KEYS[lane]) == 0 then
        redis.pcall('XGROUP', 'CREATE', KEYS[lane], G, '0', 'MKSTREAM')
      end
    end
    -- Appends the task to its lane and marks it queued.
    local function push(key, r)
      ensure_group(r[6])
      local id = redis.call('XADD', KEYS[r[6]], '*', 'k', key)
      r[1] = 'q'
      r[7] = id
      save(key, r)
      return id
    end
    -- Removes the task's current lane entry (acknowledged and deleted: bounded memory).
    local function unlink(r)
      if r[7] ~= '' then
        redis.call('XACK', KEYS[r[6]], G, r[7])
        redis.call('XDEL', KEYS[r[6]], r[7])
        r[7] = ''
      end
    end
    local function dead_letter(key, r, reason, err, cap, now)
      local p = redis.call('HGET', K_PAYLOAD, key) or ''
      redis.call('XADD', K_DEAD, 'MAXLEN', '~', cap, '*', 'key', key, 'lane', LANES[r[6]], 'reason', reason,
        'error', err, 'deliveries', r[3], 'failures', r[4], 'max_attempts', r[5], 'group', r[8],
        'enqueued_ms', r[9], 'dead_ms', now, 'payload', p)
      redis.call('HDEL', K_STATE, key)
      redis.call('HDEL', K_PAYLOAD, key)
      redis.call('ZREM', K_LEASES, key)
    end
    -- Idempotent enqueue: {1, entry id} new, {0, status} duplicate, {-1, 'nogroup'}.
    -- strict = false drops a group that no longer exists instead of refusing.
    local function enqueue(key, payload, lane, ma, gid, now, strict)
      local v = redis.call('HGET', K_STATE, key)
      if v then return {0, cmsgpack.unpack(v)[1]} end
      if gid ~= '' and redis.call('HEXISTS', K_GROUPS, gid) == 0 then
        if strict then return {-1, 'nogroup'} end
        gid = ''
      end
      redis.call('HSET', K_PAYLOAD, key, payload)
      return {1, push(key, {'q', 0, 0, 0, ma, lane, '', gid, now})}
    end
    """#

    private static func make(_ body: String) -> RedisScript { RedisScript(prelude + "\n" + body) }

    /// ARGV: key, payload, lane index, max attempts, group id ('' none).
    static let enqueue = make(#"""
    return enqueue(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], now_ms(), true)
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
    redis.call('HSET', K_GROUPS, gid, cmsgpack.pack({n, ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]}))
    redis.call('ZADD', K_GROUPS_AGE, now, gid)
    return 1
    """#)

    /// ARGV: consumer, count, lease ms, aging cap ms of lanes 2..4 (0 = none).
    /// Returns {now, n, 9 fields per task…} and, when n = 0, the 4 lane tail ids to block on.
    static let claim = make(#"""
    local consumer, want, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
    local now = now_ms()
    local out = {now, 0}
    local remaining = want
    local function read(i, n)
      local r = redis.pcall('XREADGROUP', 'GROUP', G, consumer, 'COUNT', n, 'STREAMS', KEYS[i], '>')
      if type(r) == 'table' and r.err then
        if not string.find(r.err, 'NOGROUP', 1, true) then error(r.err) end
        redis.pcall('XGROUP', 'CREATE', KEYS[i], G, '0', 'MKSTREAM')
        r = redis.call('XREADGROUP', 'GROUP', G, consumer, 'COUNT', n, 'STREAMS', KEYS[i], '>')
      end
      if not r then return 0, 0 end
      local entries = r[1][2]
      local valid = 0
      for _, e in ipairs(entries) do
        local id, f = e[1], e[2]
        local key = f and f[2]
        local rec = key and load(key)
        if rec and rec[1] == 'q' and rec[7] == id then
          rec[1] = 'r'
          rec[2] = rec[2] + 1
          rec[3] = rec[3] + 1
          save(key, rec)
          redis.call('ZADD', K_LEASES, now + lease, key)
          local p = redis.call('HGET', K_PAYLOAD, key) or ''
          local o = #out
          out[o+1], out[o+2], out[o+3], out[o+4], out[o+5] = key, p, i, rec[2], rec[3]
          out[o+6], out[o+7], out[o+8], out[o+9] = rec[4], rec[5], rec[8], id
          valid = valid + 1
        else
          -- An entry no record points at (should not happen): drop it.
          redis.call('XACK', KEYS[i], G, id)
          redis.call('XDEL', KEYS[i], id)
        end
      end
      return #entries, valid
    end
    local function drain(i, n)
      while n > 0 do
        local got, valid = read(i, n)
        n = n - valid
        remaining = remaining - valid
        if got < n + valid then break end
      end
    end
    local function last_delivered(i)
      local groups = redis.pcall('XINFO', 'GROUPS', KEYS[i])
      if type(groups) ~= 'table' or groups.err then return nil end
      for _, g in ipairs(groups) do
        local name, last
        for j = 1, #g, 2 do
          if g[j] == 'name' then name = g[j+1] elseif g[j] == 'last-delivered-id' then last = g[j+1] end
        end
        if name == G then return last end
      end
      return nil
    end
    -- Aging: work that waited longer than its lane's cap goes before newer higher-lane work.
    for i = 2, 4 do
      local cap = tonumber(ARGV[2 + i])
      if remaining > 0 and cap > 0 and now - cap > 0 then
        local last = last_delivered(i)
        if last then
          local overdue = redis.call('XRANGE', KEYS[i], '(' .. last, tostring(now - cap), 'COUNT', remaining)
          if #overdue > 0 then drain(i, #overdue) end
        end
      end
    end
    for i = 1, 4 do
      if remaining > 0 then drain(i, remaining) end
    end
    out[2] = want - remaining
    if out[2] == 0 then
      for i = 1, 4 do
        local t = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
        out[#out+1] = (t[1] and t[1][1]) or '0-0'
      end
    end
    return out
    """#)

    /// KEYS[16] result key, KEYS[17…] effect keys.
    /// ARGV: key, fence, has result (0/1), result, result ttl ms, effect count, then per effect:
    /// command, key index (into KEYS), argument count, arguments…
    /// Returns {1, 'ok'|'again', next task key or ''} or {0, reason}.
    static let complete = make(#"""
    local key, fence = ARGV[1], tonumber(ARGV[2])
    local rec = load(key)
    if not rec then return {0, 'unknown'} end
    if rec[2] ~= fence then return {0, 'fenced'} end
    if rec[1] == 'c' then return {1, 'again', ''} end
    if rec[1] ~= 'r' then return {0, 'state-' .. rec[1]} end
    local now = now_ms()
    unlink(rec)
    redis.call('ZREM', K_LEASES, key)
    redis.call('HDEL', K_PAYLOAD, key)
    rec[1] = 'c'
    save(key, rec)
    redis.call('ZADD', K_DONE, now, key)
    local a = 7
    local allowed = {HSET=1, HSETNX=1, HINCRBY=1, HDEL=1, SADD=1, SREM=1, SET=1, INCRBY=1, DEL=1,
      RPUSH=1, LPUSH=1, ZADD=1, ZINCRBY=1, EXPIRE=1, PEXPIRE=1, XADD=1}
    for _ = 1, tonumber(ARGV[6]) do
      local cmd, ki, n = ARGV[a], tonumber(ARGV[a+1]), tonumber(ARGV[a+2])
      if not allowed[cmd] then return redis.error_reply('ERR effect command not allowed: ' .. cmd) end
      local args = {cmd, KEYS[ki]}
      for j = 1, n do args[#args+1] = ARGV[a+2+j] end
      redis.call(unpack(args))
      a = a + 3 + n
    end
    if ARGV[3] == '1' then
      local ttl = tonumber(ARGV[5])
      if ttl > 0 then redis.call('SET', KEYS[16], ARGV[4], 'PX', ttl) else redis.call('SET', KEYS[16], ARGV[4]) end
    end
    local nextKey = ''
    if rec[8] ~= '' then
      local gv = redis.call('HGET', K_GROUPS, rec[8])
      if gv then
        local g = cmsgpack.unpack(gv)
        g[1] = g[1] - 1
        if g[1] <= 0 then
          redis.call('HDEL', K_GROUPS, rec[8])
          redis.call('ZREM', K_GROUPS_AGE, rec[8])
          local r = enqueue(g[2], g[3], g[4], g[5], g[6], now, false)
          if r[1] == 1 then nextKey = g[2] end
        else
          redis.call('HSET', K_GROUPS, rec[8], cmsgpack.pack(g))
        end
      end
    end
    return {1, 'ok', nextKey}
    """#)

    /// ARGV: key, fence, error text, delay ms (negative = do not retry), dead-letter cap, reason if dead.
    /// Returns {1, due ms} retrying, {2} dead-lettered, {0, reason} refused.
    static let fail = make(#"""
    local key, fence, delay = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[4])
    local rec = load(key)
    if not rec then return {0, 'unknown'} end
    if rec[2] ~= fence then return {0, 'fenced'} end
    if rec[1] ~= 'r' then return {0, 'state-' .. rec[1]} end
    local now = now_ms()
    rec[4] = rec[4] + 1
    unlink(rec)
    redis.call('ZREM', K_LEASES, key)
    if delay < 0 or rec[4] >= rec[5] then
      local reason = ARGV[6]
      if delay >= 0 then reason = 'attempts-exhausted' end
      dead_letter(key, rec, reason, ARGV[3], tonumber(ARGV[5]), now)
      return {2}
    end
    rec[1] = 'd'
    rec[2] = rec[2] + 1
    save(key, rec)
    redis.call('ZADD', KEYS[7 + rec[6]], now + delay, key)
    return {1, now + delay}
    """#)

    /// ARGV: lease ms, then key, fence pairs. Returns the keys whose lease was lost.
    static let renew = make(#"""
    local now = now_ms()
    local lease = tonumber(ARGV[1])
    local lost = {}
    for j = 2, #ARGV, 2 do
      local key, fence = ARGV[j], tonumber(ARGV[j+1])
      local rec = load(key)
      if rec and rec[1] == 'r' and rec[2] == fence then
        redis.call('ZADD', K_LEASES, now + lease, key)
      else
        lost[#lost+1] = key
      end
    end
    return lost
    """#)

    /// Hand-back on shutdown: ARGV key, fence pairs. The tasks go back to their lanes at once
    /// (the delivery does not count against the poison limit). Returns the number handed back.
    static let release = make(#"""
    local n = 0
    for j = 1, #ARGV, 2 do
      local key, fence = ARGV[j], tonumber(ARGV[j+1])
      local rec = load(key)
      if rec and rec[1] == 'r' and rec[2] == fence then
        unlink(rec)
        redis.call('ZREM', K_LEASES, key)
        rec[2] = rec[2] + 1
        if rec[3] > 0 then rec[3] = rec[3] - 1 end
        push(key, rec)
        n = n + 1
      end
    end
    return n
    """#)

    /// Lease expiry: ARGV max deliveries, limit, dead-letter cap.
    /// Returns {requeued, dead-lettered, now, next expiry ms or -1}.
    static let reclaim = make(#"""
    local maxDeliveries, limit, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
    local now = now_ms()
    local expired = redis.call('ZRANGEBYSCORE', K_LEASES, '-inf', now, 'LIMIT', 0, limit)
    local requeued, dead = 0, 0
    for _, key in ipairs(expired) do
      redis.call('ZREM', K_LEASES, key)
      local rec = load(key)
      if rec and rec[1] == 'r' then
        unlink(rec)
        if rec[3] >= maxDeliveries then
          dead_letter(key, rec, 'poison', 'lease expired on each of ' .. rec[3] .. ' deliveries', cap, now)
          dead = dead + 1
        else
          rec[2] = rec[2] + 1
          push(key, rec)
          requeued = requeued + 1
        end
      end
    end
    local nxt = redis.call('ZRANGE', K_LEASES, 0, 0, 'WITHSCORES')
    return {requeued, dead, now, tonumber(nxt[2] or -1)}
    """#)

    /// Moves due retries back to their lanes. ARGV: limit per lane.
    /// Returns {promoted, now, next due ms or -1}.
    static let promote = make(#"""
    local limit = tonumber(ARGV[1])
    local now = now_ms()
    local promoted = 0
    local nextDue = -1
    for i = 1, 4 do
      local z = KEYS[7 + i]
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
    /// fan-in groups past their TTL, dead letters past retention, and departed consumers.
    /// ARGV: done retention ms, group ttl ms, dead retention ms, consumer idle ms, limit.
    static let housekeeping = make(#"""
    local now = now_ms()
    local limit = tonumber(ARGV[5])
    local pruned, groups, consumers = 0, 0, 0
    for _, key in ipairs(redis.call('ZRANGEBYSCORE', K_DONE, '-inf', now - tonumber(ARGV[1]), 'LIMIT', 0, limit)) do
      local rec = load(key)
      if rec and rec[1] == 'c' then redis.call('HDEL', K_STATE, key) end
      redis.call('ZREM', K_DONE, key)
      pruned = pruned + 1
    end
    for _, gid in ipairs(redis.call('ZRANGEBYSCORE', K_GROUPS_AGE, '-inf', now - tonumber(ARGV[2]), 'LIMIT', 0, limit)) do
      redis.call('HDEL', K_GROUPS, gid)
      redis.call('ZREM', K_GROUPS_AGE, gid)
      groups = groups + 1
    end
    local minid = now - tonumber(ARGV[3])
    if minid > 0 and redis.call('EXISTS', K_DEAD) == 1 then
      redis.call('XTRIM', K_DEAD, 'MINID', '~', minid)
    end
    local idle = tonumber(ARGV[4])
    for i = 1, 4 do
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
}
