-- The audit chain, shared by every script that records an audit entry (include with
-- `--#include _audit`). The chain hash is computed inside Redis so a state transition and its
-- audit entry are one atomic script: there is no moment at which the transition happened but
-- its record did not. Redis's Lua has no SHA-256, so this carries one over LuaBitOp (`bit`).
--
-- rg_sha256(message) -> hex
-- rg_audit_append(log_key, head_key, study_key, actor, action, study, details) -> entry id
-- rg_audit_put(log_key, head_key, study_key, prev, ts, actor, action, study, details, hash) -> entry id
--   appends an entry whose hash the caller computed (on the hot intake path a SHA-256 in Lua
--   costs ~0.2 ms a block); the caller must have checked that `prev` is the chain's head in
--   the same script. `audit verify` recomputes every hash, so a wrong one is caught.
--   The entry hash is sha256(prev .. "\n" .. ts .. "\n" .. actor .. "\n" .. action .. "\n" ..
--   study .. "\n" .. details), where prev is the previous entry's hash (64 zeros for the
--   first) and ts is Redis's own clock in milliseconds.
local rg_band, rg_bor, rg_bxor, rg_bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rg_rshift, rg_lshift, rg_ror, rg_tobit = bit.rshift, bit.lshift, bit.ror, bit.tobit
local rg_K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2 }
for i = 1, 64 do rg_K[i] = rg_tobit(rg_K[i]) end
-- Addition modulo 2^32 (bit ops return signed 32-bit numbers; doubles add exactly).
local function rg_add(a, b, c, d, e)
  return rg_tobit(((a or 0) + (b or 0) + (c or 0) + (d or 0) + (e or 0)) % 4294967296)
end
local function rg_sha256(message)
  local length = #message
  local padded = message .. "\128" .. string.rep("\0", (55 - length) % 64)
  local bits = length * 8
  local tail = {}
  for i = 8, 1, -1 do tail[i] = string.char(bits % 256); bits = math.floor(bits / 256) end
  padded = padded .. table.concat(tail)
  local h = { rg_tobit(0x6a09e667), rg_tobit(0xbb67ae85), rg_tobit(0x3c6ef372), rg_tobit(0xa54ff53a),
              rg_tobit(0x510e527f), rg_tobit(0x9b05688c), rg_tobit(0x1f83d9ab), rg_tobit(0x5be0cd19) }
  local w = {}
  for chunk = 1, #padded, 64 do
    for i = 0, 15 do
      local b1, b2, b3, b4 = string.byte(padded, chunk + i * 4, chunk + i * 4 + 3)
      w[i] = rg_bor(rg_lshift(b1, 24), rg_lshift(b2, 16), rg_lshift(b3, 8), b4)
    end
    for i = 16, 63 do
      local x, y = w[i - 15], w[i - 2]
      local s0 = rg_bxor(rg_ror(x, 7), rg_ror(x, 18), rg_rshift(x, 3))
      local s1 = rg_bxor(rg_ror(y, 17), rg_ror(y, 19), rg_rshift(y, 10))
      w[i] = rg_add(w[i - 16], s0, w[i - 7], s1)
    end
    local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
    for i = 0, 63 do
      local S1 = rg_bxor(rg_ror(e, 6), rg_ror(e, 11), rg_ror(e, 25))
      local ch = rg_bxor(rg_band(e, f), rg_band(rg_bnot(e), g))
      local t1 = rg_add(hh, S1, ch, rg_K[i + 1], w[i])
      local S0 = rg_bxor(rg_ror(a, 2), rg_ror(a, 13), rg_ror(a, 22))
      local maj = rg_bxor(rg_band(a, b), rg_band(a, c), rg_band(b, c))
      local t2 = rg_add(S0, maj)
      hh, g, f, e, d, c, b, a = g, f, e, rg_add(d, t1), c, b, a, rg_add(t1, t2)
    end
    h[1], h[2], h[3], h[4] = rg_add(h[1], a), rg_add(h[2], b), rg_add(h[3], c), rg_add(h[4], d)
    h[5], h[6], h[7], h[8] = rg_add(h[5], e), rg_add(h[6], f), rg_add(h[7], g), rg_add(h[8], hh)
  end
  local out = {}
  for i = 1, 8 do out[i] = bit.tohex(h[i], 8) end
  return table.concat(out)
end
local function rg_audit_put(log_key, head_key, study_key, prev, ts, actor, action, study, details, hash)
  local id = redis.call('XADD', log_key, '*', 'ts', ts, 'actor', actor, 'action', action,
                        'study', study, 'details', details, 'prev', prev, 'hash', hash)
  redis.call('SET', head_key, hash)
  if study ~= '' and study_key ~= '' then redis.call('ZADD', study_key, ts, id) end
  return id
end
local function rg_audit_append(log_key, head_key, study_key, actor, action, study, details)
  local prev = redis.call('GET', head_key) or string.rep('0', 64)
  local now = redis.call('TIME')
  local ts = tostring(tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
  local hash = rg_sha256(prev .. "\n" .. ts .. "\n" .. actor .. "\n" .. action .. "\n" .. study .. "\n" .. details)
  return rg_audit_put(log_key, head_key, study_key, prev, ts, actor, action, study, details, hash)
end
