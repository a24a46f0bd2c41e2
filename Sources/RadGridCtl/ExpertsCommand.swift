import ArgumentParser
import Foundation
import RadGridCLI
import RadGridCore
import RedisClient
import Routing

/// Options every routing command shares.
struct RouterConnectionOptions: ParsableArguments {
    @OptionGroup var redis: RedisOptions

    @Option(help: "Routing policy JSON (see Ops/routing.json).")
    var config: String?

    func router(actor: String = AdminAudit.operatorName) throws -> ExpertRouter {
        let policy = try config.map { try RoutingConfig.load(path: $0) } ?? .standard
        let client = try RedisClient(url: redis.resolvedURL)
        return ExpertRouter(redis: client, prefix: redis.keyPrefix, config: policy, actor: actor)
    }
}

enum RoutingOutput {
    static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func time(_ ms: Int64) -> String {
        ms <= 0 ? "-" : ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func write(_ text: String, to path: String?) throws {
        if let path { try Data(text.utf8).write(to: URL(fileURLWithPath: path)) } else { print(text, terminator: "") }
    }
}

/// `radgridctl experts ...`: the roster of remote readers.
struct ExpertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experts",
        abstract: "Manage the roster of remote imaging experts.",
        subcommands: [Import.self, Export.self, List.self, Show.self, Set.self, Generate.self, ExpertPasswd.self, ExpertLogout.self]
    )

    static func format(_ explicit: String?, path: String?) -> String {
        if let explicit { return explicit.lowercased() }
        return path?.lowercased().hasSuffix(".json") == true ? "json" : "csv"
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import a roster (CSV or JSON); all rows or nothing.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument(help: "Roster file.") var file: String
        @Option(help: "csv or json (default: by extension).") var format: String?
        @Flag(help: "Mark the imported experts online (a heartbeat of --online-hours).") var online = false
        @Option(help: "Hours the --online heartbeat lasts.") var onlineHours: Int = 12
        @Flag(help: "Validate only.") var dryRun = false

        func run() async throws {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            let experts: [Expert]
            do {
                experts = try RosterCodec.parse(data: data, format: ExpertsCommand.format(format, path: file))
            } catch let error as RosterImportError {
                for issue in error.issues { FileHandle.standardError.write(Data("\(file): \(issue)\n".utf8)) }
                throw ExitCode(2)
            }
            if dryRun { print("\(experts.count) experts valid"); return }
            let router = try options.router()
            defer { router.redis.shutdown() }
            try await router.upsertExperts(experts, presence: online ? .online : nil,
                                           heartbeatUntil: online ? router.now + Int64(onlineHours) * 3_600_000 : nil)
            try await AdminAudit.record("admin.roster.imported", details: "experts=\(experts.count)" + (online ? ";online" : ""), client: router.redis, prefix: router.prefix)
            print("imported \(experts.count) experts")
            let now = router.now
            let unqualified = experts.filter { !$0.qualification(at: now, rules: router.config.qualificationRules).failures.isEmpty }
            if !unqualified.isEmpty {
                print("\(unqualified.count) of them fail a qualification rule now and will be offered nothing (radgridctl experts show ID says which)")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export the roster.")
        @OptionGroup var options: RouterConnectionOptions
        @Option(help: "csv or json.") var format: String?
        @Option(name: .shortAndLong, help: "Output file (default stdout).") var output: String?

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            let experts = try await router.allExperts()
            let text = ExpertsCommand.format(format, path: output) == "json" ? RosterCodec.json(experts) : RosterCodec.csv(experts)
            try RoutingOutput.write(text, to: output)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List experts with load and availability.")
        @OptionGroup var options: RouterConnectionOptions
        @Option(help: "Only experts who can read this specialty pool (e.g. CT/head).") var specialty: String?
        @Option(help: "Only experts credentialed for this site or region:NAME.") var site: String?
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            let filter = try specialty.map { try Specialty($0) }
            var states = try await router.expertStates(try await router.expertIDs())
            if let filter { states = states.filter { $0.expert.qualifies(for: filter) } }
            if let site { states = states.filter { $0.expert.credentials.contains { $0.scope == site } } }
            if json { print(try RoutingOutput.json(states)); return }
            let now = router.now
            print("ID        LOAD/CAP  OPEN  AVAILABLE  PRESENCE  SPECIALTIES")
            for state in states {
                let load = "\(state.load)/\(state.expert.capacity)"
                let available = state.availableUntil > now ? "yes" : "no"
                print(state.expert.id.padding(toLength: 10, withPad: " ", startingAt: 0) + load.padding(toLength: 10, withPad: " ", startingAt: 0)
                      + String(state.openCases).padding(toLength: 6, withPad: " ", startingAt: 0) + available.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + state.presence.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0) + state.expert.specialties.map(\.description).joined(separator: ","))
            }
            print("\(states.count) experts")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one expert.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var id: String
        @Flag(help: "JSON output.") var json = false

        func run() async throws {
            let router = try options.router()
            defer { router.redis.shutdown() }
            guard let state = try await router.expertState(id) else { throw RoutingError("routing.notFound", "expert \(id) does not exist") }
            if json { print(try RoutingOutput.json(state)); return }
            let e = state.expert
            print("""
            id:           \(e.id)
            name:         \(e.name)
            specialties:  \(e.specialties.map(\.description).joined(separator: ", "))
            credentials:  \(e.credentials.map { $0.scope + ($0.expires.map { " (until \(RoutingOutput.time($0)))" } ?? "") }.joined(separator: ", "))
            capacity:     \(e.capacity) units, load \(state.load), \(state.openCases) open
            shifts:       \(e.shifts.isEmpty ? "always" : e.shifts.map(\.description).joined(separator: ", ")) (\(e.timeZone))
            home site:    \(e.homeSite ?? "-")
            title:        \(e.title ?? "-")
            licence:      \(e.licence.map { $0.number + ($0.expires.map { " (until \(RoutingOutput.time($0)))" } ?? "") } ?? "none on file")
            practice:     \(e.practiceYears(at: router.now).map { "\($0) years independent" } ?? "unknown")
            suspended:    \(e.suspended ? "yes" : e.suspendedSpecialties.isEmpty ? "no" : "for " + e.suspendedSpecialties.map(\.description).joined(separator: ", "))
            qualified:    \(Self.qualified(e, now: router.now, rules: router.config.qualificationRules))
            presence:     \(state.presence.rawValue), heartbeat until \(RoutingOutput.time(state.heartbeatUntil))
            available:    \(state.availableUntil > router.now ? "until \(RoutingOutput.time(state.availableUntil))" : "no")
            """)
        }

        static func qualified(_ expert: Expert, now: Int64, rules: QualificationRules) -> String {
            let failures = expert.qualification(at: now, rules: rules).failures
            return failures.isEmpty ? "yes" : "no: " + failures.map(\.explanation).joined(separator: "; ")
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change presence, heartbeat or capacity of an expert.")
        @OptionGroup var options: RouterConnectionOptions
        @Argument var id: String
        @Option(help: "online, away or offline.") var status: String?
        @Flag(help: "Send a heartbeat (keeps the expert online for the TTL).") var heartbeat = false
        @Option(help: "New capacity in work units.") var capacity: Int?

        func run() async throws {
            let router = try options.router(actor: AdminAudit.operatorName)
            defer { router.redis.shutdown() }
            if let status {
                guard let presence = Presence(rawValue: status) else { throw ValidationError("--status must be online, away or offline") }
                try await router.setPresence(id, presence)
            }
            if heartbeat { try await router.heartbeat(id) }
            if let capacity { try await router.setCapacity(id, capacity) }
            if status == nil && !heartbeat && capacity == nil { throw ValidationError("nothing to set: use --status, --heartbeat or --capacity") }
            if status != nil || capacity != nil {
                try await AdminAudit.record("admin.expert.changed", details: "expert=\(id)" + (status.map { ";status=\($0)" } ?? "") + (capacity.map { ";capacity=\($0)" } ?? ""),
                                            client: router.redis, prefix: router.prefix)
            }
            print("ok")
        }
    }

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a realistic demo roster, deterministic for a seed.")
        @OptionGroup var options: RouterConnectionOptions
        @Option(help: "Number of experts.") var count: Int = 600
        @Option(help: "Random seed.") var seed: UInt64 = 1
        @Option(help: "Number of sending sites.") var sites: Int = 60
        @Option(help: "csv or json.") var format: String?
        @Option(name: .shortAndLong, help: "Output file (default stdout unless --import).") var output: String?
        @Flag(name: .customLong("import"), help: "Import into Redis instead of printing.") var importRoster = false
        @Flag(help: "With --import: mark them online for 12 hours.") var online = false

        func run() async throws {
            guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1...100000") }
            let experts = RosterGenerator.generate(count: count, seed: seed, sites: sites)
            if importRoster {
                let router = try options.router()
                defer { router.redis.shutdown() }
                try await router.upsertExperts(experts, presence: online ? .online : nil, heartbeatUntil: online ? router.now + 12 * 3_600_000 : nil)
                print("imported \(experts.count) experts")
                if output == nil { return }
            }
            let text = ExpertsCommand.format(format, path: output) == "json" ? RosterCodec.json(experts) : RosterCodec.csv(experts)
            try RoutingOutput.write(text, to: output)
        }
    }
}
