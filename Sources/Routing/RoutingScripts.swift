import RedisClient

/// The router's Lua scripts (`Lua/*.lua`, embedded at build time). Each one is a single
/// atomic step; every key it touches is in KEYS (all under the `{rt}` hash tag). The KEYS and
/// ARGV layout they share is declared once in `Lua/_routing.lua`; each script's file opens
/// with its own arguments and reply.
enum RoutingScripts {
    static let assign = RedisScript(RoutingLua.assign)
    static let action = RedisScript(RoutingLua.action)
    static let timer = RedisScript(RoutingLua.timer)
    static let reindex = RedisScript(RoutingLua.reindex)
    static let sync = RedisScript(RoutingLua.sync)
}
