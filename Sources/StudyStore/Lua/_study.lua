-- Shared by the study store's scripts. Every script's KEYS start with the same four keys,
-- all tagged {s:<uid>} (one cluster slot):
--   KEYS[1] the study record (hash)   KEYS[2] audit log   KEYS[3] audit head   KEYS[4] audit study index
-- The record's fields are named in docs/LIFECYCLE.md; `v` is its version, bumped by every
-- change made through apply.lua, so a decision made on an older version is refused.
--#include _audit
local K_RECORD, K_AUDIT_LOG, K_AUDIT_HEAD, K_AUDIT_INDEX = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- The one clock of these scripts: Redis's own, in milliseconds.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function audit(actor, action, uid, details)
  return rg_audit_append(K_AUDIT_LOG, K_AUDIT_HEAD, K_AUDIT_INDEX, actor, action, uid, details)
end
