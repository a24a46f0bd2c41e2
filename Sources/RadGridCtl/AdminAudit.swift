import Audit
import Foundation
import RadGridCore
import RedisClient

/// Every change an operator makes through radgridctl (sites, tokens, AE titles, PACS, roster,
/// accounts, dead letters, outbox) leaves an entry in the `admin` audit chain, attributed to
/// the operating-system user who ran it (`RADGRID_OPERATOR` when set: a jump host's real user).
/// Details are codes, ids and counts — never a secret or patient data.
enum AdminAudit {
    static let chain = "admin"

    static var operatorName: String {
        let environment = ProcessInfo.processInfo.environment
        let name = environment["RADGRID_OPERATOR"] ?? environment["USER"] ?? environment["LOGNAME"] ?? "uid\(getuid())"
        return String(name.filter { !$0.isWhitespace && $0 != ":" }.prefix(64))
    }

    /// Records a change that has been made. If the entry cannot be written, the command fails
    /// saying so, so an operator never believes an unrecorded change was recorded.
    static func record(_ action: String, details: String, client: RedisClient, prefix: KeyPrefix) async throws {
        do {
            try await AuditTrail(client: client, prefix: prefix, chain: chain).append(actor: AuditActor(.admin, operatorName), action: action, details: details)
        } catch {
            throw CommandFailure(RadGridError(code: "audit.notRecorded", message: "the change was made but its audit entry could not be written (\(error)); record it by hand"))
        }
    }
}
