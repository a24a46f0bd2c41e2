-- The task queue's prelude, included by every queue script (`--#include _queue`, or through
-- `_records`). Each script runs atomically on the server and makes one state change of one or
-- more tasks.
--
-- KEYS: every script receives the same 14 keys first, built by `QueueKeys.scriptKeys` in the
-- order of `K` below; scripts that need more (the result and effect keys of `complete`) get
-- them after those, from KEYS[15] on. Every key a script touches is in KEYS and
-- all of them carry the queue's hash tag `{q:<name>}`.
--
-- Fencing by entry. Every delivery of a task is a fresh lane entry: a retry, a reclaim after
-- lease expiry and a hand-back each append a new entry and acknowledge the old one. The entry
-- id is therefore the claim's fencing token, and a claim is a bare XREADGROUP from the client:
-- the group's pending-entries list (PEL) records who holds the entry and since when, which is
-- the lease (renewed with `XCLAIM … JUSTID`, reaped with `XPENDING … IDLE`). Claims write
-- nothing per task, which is what makes them cheap.
--
-- A task's record in the state hash (field = task key) is short text while the task has a lane
-- entry, since the entry holds the rest:
--   `q <fence> <lane index>`     queued or claimed; the fence is its current lane entry id
--   `c <fence> <completion ms>`  completed: a tombstone for idempotent enqueue, listed in
--                                completion order in K.done until `completedRetention` has passed
--   `d` newline MessagePack       delayed for a retry: no entry, so the record keeps everything,
--                                as the array [deliveries, failures, max_attempts, lane, group,
--                                first_enqueue_ms, payload]
-- Scripts see a record decoded into a table with named fields (`decode` in `_records.lua`):
--   status            'q', 'd' or 'c'
--   fence             the current lane entry id ('' when not in a lane)
--   deliveries        deliveries that have ended (failed, expired; hand-backs do not count)
--   failures          handler errors so far
--   max_attempts      failures allowed before the task is dead-lettered
--   lane              lane index, 1 stat … 4 bulk
--   group             fan-in group id ('' when none)
--   first_enqueue_ms  when the task was first enqueued (server ms)
--   payload           the task's payload
--   completed_ms      (tombstones only) when the task completed
-- A completion checks its claim by comparing the whole `q` record, without decoding anything.
--
-- A lane entry carries what a claim needs: `k` task key, `p` payload, `m` "delivery failures
-- max_attempts first_enqueue_ms" (delivery = the number of this delivery, deliveries + 1),
-- `g` fan-in group (only when there is one). Waiting and pending entries are never trimmed, so
-- the entry a `q` record names is there when a script needs it. Claims read entries with a
-- plain XREADGROUP from the client: a script only plans how many to take from which lane (each
-- entry passed through a script costs ~5 µs of conversion to and from Lua tables).
--
-- Acknowledged entries are not deleted one by one (XDEL of the oldest entry rescans its node on
-- Redis 7, ~8 µs each): the acknowledged head of a lane is trimmed with `XTRIM MINID ~`, which
-- drops whole nodes, so a lane holds at most about one node of finished entries beyond its
-- live ones.
--
-- Time: every script takes it from `now_ms()` (the Redis server's clock), so worker clock skew
-- does not matter; no script reads TIME itself.
--
-- Cost: everything a prelude declares is built again on every call (Redis runs a script's
-- whole body each time: a `local function` is a new closure, ~0.1 µs; a table constructor a
-- new table, ~0.3 µs for 4 entries and ~0.7 µs for 8; CPU time on the benchmark VM). So this
-- file holds only what every script needs (~1.1-1.6 µs a call; the single positional prelude
-- it replaced, ~2.2-3.1); the record and delivery helpers are in `_records.lua` (~3.4-4.4 µs
-- with this file), included by the scripts that use them, so a claim plan or a lease renewal
-- pays for none of them.

-- The fixed KEYS, in the order of `QueueKeys.scriptKeys`. (The table and its two lists cost
-- ~1.3 µs a call more than plain locals: with batches of 64-100 tasks a call, ~0.02 µs a task.)
local K = {
  lanes = {KEYS[1], KEYS[2], KEYS[3], KEYS[4]},       -- streams, one entry per delivery
  state = KEYS[5],                                     -- hash: task key -> record
  delayed = {KEYS[6], KEYS[7], KEYS[8], KEYS[9]},     -- zsets: task key -> retry due ms, per lane
  dead = KEYS[10],                                     -- stream: dead letters
  done = KEYS[11],                                     -- list: completed keys in completion order
  groups = KEYS[12],                                   -- hash: fan-in group -> next task (MessagePack)
  groups_age = KEYS[13],                               -- zset: fan-in group -> creation ms
  groups_left = KEYS[14],                              -- hash: fan-in group -> members not yet completed
}                                                      -- KEYS[15…]: a script's own (see its header)
local GROUP = 'workers'                                -- the lanes' consumer group

-- The one time source: the Redis server's clock in ms.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
