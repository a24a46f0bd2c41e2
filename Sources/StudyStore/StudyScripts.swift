import RedisClient

/// The study store's scripts (`Lua/*.lua`). Each one touches only keys tagged `{s:<study uid>}`
/// (the study hash, its instance index, its blobs and the study's own audit chain), so a
/// study's state change and its audit entry are one atomic step, on a cluster too.
enum StudyScripts {
    static let storeInstance = RedisScript(StudyStoreLua.storeInstance)
    static let commit = RedisScript(StudyStoreLua.commit)
    static let transition = RedisScript(StudyStoreLua.transition)
}
