-- The critical-results prelude, included by every script of the module (`--#include
-- _critical`). Each script is one atomic transition with its audit entry (chain `cr`): a
-- notification, an escalation or an acknowledgement happens exactly once even with several
-- notifiers running. Every key carries the hash tag `{cr}` (one cluster slot); the scripts that
-- scan an index build result keys from its members with the same tag (ARGV base).
--
-- KEYS (built by `CriticalResultStore.staticKeys`): 1…8 the static keys below, 9… the
-- result hashes the script is about (ack, retry, raise), none for the scanning scripts.
-- ARGV: 1 now (ms, the caller's clock: tests inject one, so escalation is testable),
-- 2 audit actor, 3 key base (`<prefix>crit:{cr}:`), 4 the audit chain's study-index base
-- (`<prefix>{cr}:audit:study:`), then the script's own arguments from ARGV[NA + 1].
--
-- A result hash (`crit:{cr}:r:<source>:<study uid>`) holds: id, study, case, site, source
-- (report | ai), priority, raised (ms), state (notifying | delivered | acknowledged | dead),
-- level (escalations so far, 0…2), escalated1_at (ms of the first escalation), escalate_at
-- (ms of the next one as last scheduled, 0 none), ack_by, ack_method, ack_at, and per
-- delivery level L (0 the site, 1 the site's second contact, 2 the grid's admins): dL_state
-- (pending | delivered | dead | cancelled), dL_attempts, dL_error, dL_lease (claim token),
-- dL_at (ms delivered or given up).
--
-- Index members: `<source>:<study uid>` (open, timers, acked); deliveries and dead letters
-- add `|<level>`.
local K = {
  open = KEYS[1],        -- ZSET unacknowledged results by raised ms
  deliveries = KEYS[2],  -- ZSET 'member|level' by due ms (a claimed one: by lease expiry)
  timers = KEYS[3],      -- ZSET unacknowledged results by next escalation ms
  dead = KEYS[4],        -- ZSET 'member|level' whose delivery gave up, by ms
  acked = KEYS[5],       -- ZSET acknowledged results by expiry ms (for `list --all`)
  audit_log = KEYS[6],   -- STREAM the audit chain `cr`
  audit_head = KEYS[7],  -- STRING its head hash
  policy = KEYS[8],      -- HASH the running notifiers' policy (retention_ms), see ack.lua
  first_result = 9,
}
local NOW = tonumber(ARGV[1])
local ACTOR = ARGV[2]
local BASE = ARGV[3]
local AUDIT_STUDY = ARGV[4]
local NA = 4

local function result_key(member) return BASE .. 'r:' .. member end

-- 'report:1.2.3|1' -> 'report:1.2.3', '1'
local function split_delivery(entry)
  return string.match(entry, '^(.+)|(%d)$')
end

--#include _audit
local function audit(action, study, details)
  rg_audit_append(K.audit_log, K.audit_head, AUDIT_STUDY .. study, ACTOR, action, study, details)
end
