-- Reads one session and slides its idle timeout, in one step (every authenticated request).
-- KEYS: 1 the session hash (`sessions:<sha256 of the token>`)
-- ARGV: 1 now (ms), 2 idle timeout (ms)
-- The hash holds: user, role, expert, site, name, created_ms, absolute_ms (the session's hard
-- end). Returns the fields as a flat array plus 'expires_ms', or an empty array when the
-- session does not exist or has passed its hard end (it is then deleted).
local fields = redis.call('HGETALL', KEYS[1])
if #fields == 0 then return {} end
local now, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local absolute = nil
for i = 1, #fields, 2 do
  if fields[i] == 'absolute_ms' then absolute = tonumber(fields[i + 1]) end
end
if not absolute or absolute <= now then
  redis.call('DEL', KEYS[1])
  return {}
end
local expires = math.min(now + idle, absolute)
-- Relative, so Redis's own clock counts the idle time down from this request.
redis.call('PEXPIRE', KEYS[1], expires - now)
fields[#fields + 1] = 'expires_ms'
fields[#fields + 1] = tostring(expires)
return fields
