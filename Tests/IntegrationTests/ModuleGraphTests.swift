import Foundation
import Testing
import TestSupport

/// The module graph points one way: libraries never depend on their consumers, the contract
/// depends on nothing heavy, and no library links argument parsing. Read from the package
/// manifest itself.
@Suite("Module graph")
struct ModuleGraphTests {
    /// Each target's dependencies (targets and products) as `Package.swift` declares them. (Read
    /// from the manifest's text: `swift package dump-package` would wait for the build lock
    /// that `swift test` holds.)
    static func targets() throws -> [String: Set<String>] {
        let text = Array(try String(contentsOf: Corpus.packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8))
        var graph: [String: Set<String>] = [:]
        var i = 0
        func match(_ word: String, at index: Int) -> Bool {
            let w = Array(word)
            return index + w.count <= text.count && Array(text[index..<(index + w.count)]) == w
        }
        func quoted(from index: Int) -> (String, Int)? {
            guard let open = text[index...].firstIndex(of: "\""), let close = text[(open + 1)...].firstIndex(of: "\"") else { return nil }
            return (String(text[(open + 1)..<close]), close + 1)
        }
        while i < text.count {
            guard match("Target(name: ", at: i) || match("target(name: ", at: i) else { i += 1; continue }
            guard let (name, afterName) = quoted(from: i) else { break }
            i = afterName
            // The target's dependency list, if it has one before the next target.
            let next = (afterName..<text.count).first { match("arget(name: ", at: $0) } ?? text.count
            var names = Set<String>()
            if let listStart = (afterName..<next).first(where: { match("dependencies: [", at: $0) }) {
                var depth = 0
                var j = listStart + "dependencies: ".count
                var inString = false
                var current = ""
                while j < text.count {
                    let c = text[j]
                    if c == "\"" {
                        if inString { names.insert(current); current = "" }
                        inString.toggle()
                    } else if inString {
                        current.append(c)
                    } else if c == "[" {
                        depth += 1
                    } else if c == "]" {
                        depth -= 1
                        if depth == 0 { break }
                    }
                    j += 1
                }
            }
            graph[name] = names
        }
        return graph
    }

    /// Everything `name` depends on, directly or not.
    static func closure(_ name: String, in graph: [String: Set<String>]) -> Set<String> {
        var seen = Set<String>()
        var stack = [name]
        while let next = stack.popLast() {
            for dependency in graph[next] ?? [] where seen.insert(dependency).inserted { stack.append(dependency) }
        }
        return seen
    }

    @Test func dependenciesPointOneWay() throws {
        let graph = try Self.targets()
        #expect(graph["Coordinator"] != nil, "the manifest was read")
        // Defect of the first wave: Coordinator depended on WorkerDaemon (for the task
        // contract) and on Gateway (for the local grid's tokens).
        let coordinator = Self.closure("Coordinator", in: graph)
        #expect(!coordinator.contains("WorkerDaemon") && !coordinator.contains("Gateway") && !coordinator.contains("GridSupervisor"))
        // The contract and the pure state machine depend on nothing heavy.
        #expect(Self.closure("GridContract", in: graph).isSubset(of: ["RadGridCore", "Logging", "swift-log"]))
        #expect(!Self.closure("StudyLifecycle", in: graph).contains("RedisClient"))
        // No library links ArgumentParser (defect: RadGridCore did, into every module).
        let libraries = ["RadGridCore", "GridContract", "RedisClient", "TaskQueue", "StudyStore", "StudyLifecycle", "Routing", "Coordinator",
                         "Gateway", "Audit", "DICOM", "DICOMCodecs", "Imaging", "Screening", "WorkerDaemon", "GridSupervisor", "Zstd", "Telemetry",
                         "Accounts", "Portal", "CriticalResults", "DIMSE", "DIMSEGateway", "Edge", "SQLite", "DICOMWeb"]
        for library in libraries {
            #expect(!Self.closure(library, in: graph).contains("ArgumentParser"), "\(library) links ArgumentParser")
        }
        // The data plane does not reach into the control plane's daemons.
        #expect(!Self.closure("WorkerDaemon", in: graph).contains("Coordinator") && !Self.closure("WorkerDaemon", in: graph).contains("Routing"))
        // Critical results sit beside the study store: the gateway, the portal and the
        // coordinator raise and acknowledge through it; it depends on none of them.
        let critical = Self.closure("CriticalResults", in: graph)
        #expect(!critical.contains("StudyStore") && !critical.contains("Gateway") && !critical.contains("Portal") && !critical.contains("Coordinator"))
        // The portal reads studies and acts through the router; it never runs the pipeline,
        // and nothing below it depends on it.
        let portal = Self.closure("Portal", in: graph)
        #expect(!portal.contains("Coordinator") && !portal.contains("WorkerDaemon") && !portal.contains("Gateway") && !portal.contains("TaskQueue"))
        // The upper layer knows nothing of the grid: no store, no Redis, no DICOM parsing.
        #expect(Self.closure("DIMSE", in: graph).isDisjoint(with: ["RedisClient", "StudyStore", "Gateway", "DICOM", "GridContract"]))
        // The edge runs in the hospital without Redis credentials: it cannot even link the
        // client, the store or the central gateway; DICOMweb's formats are shared, not the gateway.
        #expect(Self.closure("Edge", in: graph).isDisjoint(with: ["RedisClient", "StudyStore", "Gateway", "Audit", "TaskQueue", "Routing"]))
        #expect(Self.closure("DICOMWeb", in: graph).isDisjoint(with: ["RedisClient", "StudyStore", "Gateway", "Hummingbird", "DICOM"]))
        for (name, _) in graph where name != "Portal" && name != "radgrid" && !name.hasSuffix("Tests") {
            #expect(!Self.closure(name, in: graph).contains("Portal"), "\(name) depends on the portal")
        }
    }
}
