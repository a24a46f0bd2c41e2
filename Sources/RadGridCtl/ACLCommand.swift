import ArgumentParser
import GridContract
import RadGridCore

/// `radgridctl acl template`: the Redis ACL file of the grid's roles (one user per role, each
/// with only its key families and commands), with placeholder password hashes, for operators
/// who run their own Redis; `radgrid up` creates the same users itself.
struct ACLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "acl", abstract: "The Redis users of the grid's roles and what each may do.",
                                                    subcommands: [Template.self, Rules.self])

    struct Template: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print an ACL file for the roles; replace #@ROLE@ by the SHA-256 (hex) of each role's password.")
        @Option(help: "Prefix of every Redis key of this grid.") var prefix = KeyPrefix.default.value

        func run() {
            print(RedisAccessPolicy(prefix: KeyPrefix(prefix)).aclFileTemplate(), terminator: "")
        }
    }

    struct Rules: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one role's ACL rules (for ACL SETUSER).")
        @Argument(help: "gateway, coordinator, worker, router, portal, admin, monitor or auditor.") var role: String
        @Option(help: "Prefix of every Redis key of this grid.") var prefix = KeyPrefix.default.value

        func validate() throws {
            guard GridRole(rawValue: role) != nil else { throw ValidationError("unknown role '\(role.prefix(32))': one of \(GridRole.allCases.map(\.rawValue).joined(separator: ", "))") }
        }

        func run() {
            print(RedisAccessPolicy(prefix: KeyPrefix(prefix)).permissions(for: GridRole(rawValue: role)!).joined(separator: " "))
        }
    }
}
