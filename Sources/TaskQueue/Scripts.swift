import RedisClient

/// The task queue's Lua scripts (`Lua/*.lua`, embedded at build time). Every state change of a
/// task is one of them, atomic on the server. The record and lane-entry formats, fencing and
/// the KEYS layout every script shares are described in `Lua/_queue.lua`; each script's file
/// opens with its KEYS, ARGV and reply.
enum Scripts {
    static let enqueue = RedisScript(TaskQueueLua.enqueue)
    static let expectGroup = RedisScript(TaskQueueLua.expectGroup)
    static let claimPlan = RedisScript(TaskQueueLua.claimPlan)
    static let complete = RedisScript(TaskQueueLua.complete)
    static let fail = RedisScript(TaskQueueLua.fail)
    static let renew = RedisScript(TaskQueueLua.renew)
    static let release = RedisScript(TaskQueueLua.release)
    static let reclaim = RedisScript(TaskQueueLua.reclaim)
    static let promote = RedisScript(TaskQueueLua.promote)
    static let housekeeping = RedisScript(TaskQueueLua.housekeeping)
    static let retryDead = RedisScript(TaskQueueLua.retryDead)
    static let status = RedisScript(TaskQueueLua.status)
}
