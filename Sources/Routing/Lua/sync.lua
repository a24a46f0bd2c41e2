-- Roster and availability changes of one expert: upsert (profile, capacity, home site,
-- credentials, pools), avail (availability refresh) or remove (only without open work).
-- The expert is put into each pool it belongs to while available with a valid credential for
-- the pool's scope, and taken out of the others.
-- KEYS: the router's (see _routing.lua), then from K.first_pool every pool the expert was or
--   will be in, in the order of the pool names in ARGV.
-- ARGV: the router's 13, then NA+1 expert, +2 expected current pools string (optimistic
--   check), +3 mode (upsert | avail | remove), +4 capacity, +5 home site, +6 available until ms,
--   +7 next check ms, +8 new pools string, +9 new credentials "scope=expiry …", +10 old
--   credential scopes "scope …", +11 profile JSON, +12 presence "status|heartbeatUntilMs",
--   +13 what an upsert changed ("licence,capacity", '' for none or another mode), +14 the
--   qualification rules the expert fails ("licence_expired,practice_years", '' none),
--   +15 number of pool keys, +16… pool names.
-- Returns {'ok', wasAvailable, isAvailable} ('true'/'false'; '' for remove), {'retry', current
--   pools, ''} when the pools changed meanwhile, or {'busy', '', ''} (remove with open work).
--#include _routing
local id, expected_pools, mode = ARGV[NA + 1], ARGV[NA + 2], ARGV[NA + 3]
local capacity_text, home_site, until_text, next_check = ARGV[NA + 4], ARGV[NA + 5], ARGV[NA + 6], ARGV[NA + 7]
local new_pools, new_credentials, old_scopes = ARGV[NA + 8], ARGV[NA + 9], ARGV[NA + 10]
local profile, presence = ARGV[NA + 11], ARGV[NA + 12]
local changes, unqualified = ARGV[NA + 13], ARGV[NA + 14]
local npools = tonumber(ARGV[NA + 15])
local first_pool_name = NA + 16
local current = redis.call('HGET', K.pools, id) or ''
if current ~= expected_pools then return {'retry', current, ''} end
local was_until = tonumber(redis.call('HGET', K.available_until, id) or '0')
local was_available = was_until > NOW
for scope in string.gmatch(old_scopes, '%S+') do redis.call('HDEL', K.cred, id .. '|' .. scope) end
if mode == 'remove' then
  if tonumber(redis.call('HGET', K.open, id) or '0') > 0 then return {'busy', '', ''} end
  for p = 1, npools do redis.call('ZREM', KEYS[K.first_pool + p - 1], id) end
  for _, hash in ipairs({K.cap, K.load, K.recent, K.available_until, K.home, K.pools, K.open, K.profile, K.presence}) do
    redis.call('HDEL', hash, id)
  end
  redis.call('ZREM', K.next_check, id)
  audit('expert_remove', '', 'expert=' .. id)
  return {'ok', '', ''}
end
local old_cap = tonumber(redis.call('HGET', K.cap, id) or '0')
local cap = tonumber(capacity_text)
redis.call('HSET', K.cap, id, cap)
if home_site ~= '' then redis.call('HSET', K.home, id, home_site) else redis.call('HDEL', K.home, id) end
local available_until = tonumber(until_text)
redis.call('HSET', K.available_until, id, available_until)
redis.call('ZADD', K.next_check, next_check, id)
redis.call('HSET', K.pools, id, new_pools)
if profile ~= '' then redis.call('HSET', K.profile, id, profile) end
if presence ~= '' then redis.call('HSET', K.presence, id, presence) end
if not redis.call('HGET', K.load, id) then redis.call('HSET', K.load, id, 0) end
local credentials = {}
for entry in string.gmatch(new_credentials, '%S+') do
  local eq = string.find(entry, '=', 1, true)
  local scope, expiry = string.sub(entry, 1, eq - 1), string.sub(entry, eq + 1)
  credentials[scope] = expiry
  redis.call('HSET', K.cred, id .. '|' .. scope, expiry)
end
local wanted = {}
for name in string.gmatch(new_pools, '%S+') do wanted[name] = true end
local r = ratio(id)
local score = r + jitter(id)
local available = available_until > NOW
for p = 1, npools do
  local name = ARGV[first_pool_name + p - 1]
  local scope = string.sub(name, string.find(name, '@', 1, true) + 1)
  local expiry = credentials[scope]
  local credential_ok = expiry and (expiry == '0' or tonumber(expiry) > NOW)
  if wanted[name] and available and credential_ok then
    redis.call('ZADD', KEYS[K.first_pool + p - 1], score, id)
  else
    redis.call('ZREM', KEYS[K.first_pool + p - 1], id)
  end
end
if mode == 'upsert' then
  audit('expert_upsert', '', 'expert=' .. id .. ';cap=' .. cap .. ';available=' .. tostring(available) ..
    ';changed=' .. changes .. ';unqualified=' .. unqualified)
elseif available ~= was_available then
  if available then audit('expert_available', '', 'expert=' .. id) else audit('expert_unavailable', '', 'expert=' .. id) end
end
if available and (not was_available or cap > old_cap) then
  redis.call('LPUSH', K.wake, 'expert:' .. id)
  redis.call('LTRIM', K.wake, 0, 255)
end
return {'ok', tostring(was_available), tostring(available)}
