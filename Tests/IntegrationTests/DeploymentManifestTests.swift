import Foundation
import GridContract
import RadGridCore
import TaskQueue
import Testing
import TestSupport

/// What an operator deploys from Ops/ besides the systemd units: the Kubernetes manifests
/// (Ops/kubernetes, checked by its validate.sh), the Prometheus rules (promtool check and
/// promtool's unit tests) and the Grafana dashboard. The tools are required: a missing one
/// fails the test, it does not skip it.
@Suite("Ops: Kubernetes manifests, Prometheus rules, Grafana dashboard", .serialized)
struct DeploymentManifestTests {
    static let root = Corpus.packageRoot.path
    static let image = "registry.example.org/radgrid:VERSION"
    static let deployments: Set<String> = ["radgrid-gateway", "radgrid-dimse", "radgrid-coordinator", "radgrid-router", "radgrid-worker",
                                           "radgrid-worker-ai", "radgrid-portal", "radgrid-auditor", "radgrid-feed"]

    // MARK: Running the tools

    /// An executable found in PATH (or at an absolute path), else nil.
    static func tool(_ name: String) -> String? {
        if name.hasPrefix("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a tool to its end: its exit code (nil on timeout) and everything it printed.
    static func run(_ executable: String, _ arguments: [String], timeout: Duration) async throws -> (code: Int32?, output: String) {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("rg-deploy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let child = try ChildProcess(executable: executable, arguments: arguments, outputPath: work + "/output.log")
        let code = await child.exit(timeout: timeout)
        if code == nil { await child.stop(grace: .seconds(5)) }
        return (code, Files.read(work + "/output.log") ?? "")
    }

    static func promtool() throws -> String {
        try #require(tool("promtool"), "promtool is missing (Debian package prometheus)")
    }

    // MARK: Prometheus

    @Test func theAlertRulesPassPromtoolAndTheirUnitTests() async throws {
        let promtool = try Self.promtool()
        let check = try await Self.run(promtool, ["check", "rules", Self.root + "/Ops/prometheus/radgrid-rules.yml"], timeout: .seconds(60))
        #expect(check.code == 0, "promtool check rules:\n\(check.output)")
        let tests = try await Self.run(promtool, ["test", "rules", Self.root + "/Ops/prometheus/radgrid-rules.test.yml"], timeout: .seconds(120))
        #expect(tests.code == 0, "promtool test rules:\n\(tests.output)")
        #expect(tests.output.contains("SUCCESS"), "\(tests.output)")
    }

    /// Every alert of the rules file has a unit test that expects it to fire, and the rules
    /// carry what an alert needs to be acted on.
    @Test func everyAlertIsTestedFiringAndHasSeverityAndAnnotations() throws {
        let rules = try String(contentsOfFile: Self.root + "/Ops/prometheus/radgrid-rules.yml", encoding: .utf8)
        let tests = try String(contentsOfFile: Self.root + "/Ops/prometheus/radgrid-rules.test.yml", encoding: .utf8)
        let alerts = Set(Self.values(of: "alert", in: rules))
        #expect(alerts.count >= 12, "\(alerts)")
        for alert in alerts {
            #expect(tests.contains("alertname: \(alert)\n        exp_alerts:\n          - exp_labels:"), "no test makes \(alert) fire")
            #expect(tests.contains("alertname: \(alert)\n        exp_alerts: []"), "no test keeps \(alert) quiet")
        }
        // Each alert rule: a `for:`, a severity and both annotations.
        let blocks = rules.components(separatedBy: "      - alert: ").dropFirst()
        #expect(blocks.count >= alerts.count)
        for block in blocks {
            let name = block.prefix { $0 != "\n" }
            let body = block.components(separatedBy: "\n      - ").first ?? ""
            #expect(body.contains("\n        for: "), "\(name) has no for:")
            #expect(body.contains("\n          severity: critical") || body.contains("\n          severity: warning"), "\(name) has no severity")
            #expect(body.contains("\n          summary: ") && body.contains("\n          description: "), "\(name) lacks summary or description")
        }
    }

    // MARK: Metric names

    /// Every metric name the grid's Swift code exports: (name, is it a Timer, so a histogram
    /// with `_bucket`, `_sum` and `_count` series).
    static func exportedMetrics() throws -> (names: Set<String>, histograms: Set<String>) {
        var names = Set<String>(), histograms = Set<String>()
        let literal = try NSRegularExpression(pattern: #""(radgrid_[a-z0-9_]+)""#)
        let timer = try NSRegularExpression(pattern: #"Timer\(label: "(radgrid_[a-z0-9_]+)""#)
        for folder in ["Sources", "Workers"] {
            let base = Self.root + "/" + folder
            guard let files = FileManager.default.enumerator(atPath: base) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                guard let text = Files.read(base + "/" + file) else { continue }
                let range = NSRange(text.startIndex..., in: text)
                for match in literal.matches(in: text, range: range) { names.insert((text as NSString).substring(with: match.range(at: 1))) }
                for match in timer.matches(in: text, range: range) { histograms.insert((text as NSString).substring(with: match.range(at: 1))) }
            }
        }
        return (names, histograms)
    }

    /// redis_exporter's series the rules and the dashboard use (the exporter is documented in
    /// the rules file's header; these are its names, not the grid's).
    static let redisExporterMetrics: Set<String> = [
        "redis_up", "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_stream_length", "redis_stream_first_entry_id",
        "redis_stream_group_lag", "redis_stream_group_messages_pending", "redis_stream_group_last_delivered_id",
    ]

    /// The metric names a PromQL expression uses that are the grid's or redis_exporter's
    /// (recording rules, `radgrid:…`, and Prometheus's own `up` are not looked for).
    static func metricNames(in expression: String) throws -> [String] {
        let pattern = try NSRegularExpression(pattern: #"(?<![A-Za-z0-9_:])(radgrid_[a-z0-9_]+|redis_[a-z0-9_]+)"#)
        let range = NSRange(expression.startIndex..., in: expression)
        return pattern.matches(in: expression, range: range).map { (expression as NSString).substring(with: $0.range(at: 1)) }
    }

    static func unknownMetrics(in expressions: [String]) throws -> [String] {
        let exported = try exportedMetrics()
        #expect(exported.names.contains("radgrid_queue_wait") && exported.histograms.contains("radgrid_turnaround_seconds"), "the source scan found \(exported.names.count) names")
        var unknown: [String] = []
        for expression in expressions {
            for name in try metricNames(in: expression) {
                if exported.names.contains(name) || redisExporterMetrics.contains(name) { continue }
                let base = ["_bucket", "_sum", "_count"].first { name.hasSuffix($0) }.map { String(name.dropLast($0.count)) }
                if let base, exported.histograms.contains(base) { continue }
                unknown.append(name)
            }
        }
        return unknown
    }

    /// The values of `key:` in a YAML file of our own: inline, or a `>`/`|` block indented below it.
    static func values(of key: String, in yaml: String) -> [String] {
        let lines = yaml.components(separatedBy: "\n")
        var result: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let trimmed = line.drop { $0 == " " || $0 == "-" }
            index += 1
            guard trimmed.hasPrefix(key + ":") else { continue }
            let indent = line.prefix { $0 == " " || $0 == "-" }.count
            var value = trimmed.dropFirst(key.count + 1).trimmingCharacters(in: .whitespaces)
            if value.hasPrefix(">") || value.hasPrefix("|") {
                var block: [String] = []
                while index < lines.count, lines[index].trimmingCharacters(in: .whitespaces).isEmpty || lines[index].prefix(while: { $0 == " " }).count > indent {
                    block.append(lines[index].trimmingCharacters(in: .whitespaces))
                    index += 1
                }
                value = block.joined(separator: " ")
            }
            result.append(value)
        }
        return result
    }

    @Test func theRulesNameOnlyMetricsTheGridOrRedisExporterExports() throws {
        let rules = try String(contentsOfFile: Self.root + "/Ops/prometheus/radgrid-rules.yml", encoding: .utf8)
        let expressions = Self.values(of: "expr", in: rules)
        #expect(expressions.count >= 30)
        #expect(try Self.unknownMetrics(in: expressions) == [])
        // The names the brief asks the alerts to watch.
        let all = expressions.joined(separator: "\n")
        for name in ["radgrid_queue_dead_total", "radgrid_sla_breaches_total", "radgrid_turnaround_seconds_sum", "radgrid_inference_failures_total",
                     "redis_memory_used_bytes", "redis_memory_max_bytes", "redis_stream_group_lag"] {
            #expect(all.contains(name), "no rule uses \(name)")
        }
    }

    @Test func theDashboardParsesUsesOnlyRealMetricsAndEveryQueryParses() async throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/Ops/grafana/radgrid-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((dashboard["schemaVersion"] as? Int ?? 0) >= 36)
        #expect(dashboard["uid"] as? String == "radgrid-overview")
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let ids = panels.compactMap { $0["id"] as? Int }
        #expect(ids.count == panels.count && Set(ids).count == ids.count, "panel ids must be unique")
        var expressions: [String] = []
        for panel in panels where panel["type"] as? String != "row" {
            let targets = panel["targets"] as? [[String: Any]] ?? []
            #expect(!targets.isEmpty, "panel \(panel["title"] ?? "?") has no query")
            let source = panel["datasource"] as? [String: Any]
            #expect(source?["uid"] as? String == "${datasource}", "panel \(panel["title"] ?? "?") does not use the datasource variable")
            expressions += targets.compactMap { $0["expr"] as? String }
        }
        #expect(expressions.count >= 30)
        #expect(try Self.unknownMetrics(in: expressions) == [])
        // The panels the operators look for.
        let all = expressions.joined(separator: "\n")
        for name in ["redis_stream_group_lag", "radgrid_worker_tasks_total", "radgrid_worker_stage_seconds_bucket", "radgrid_inference_seconds_bucket",
                     "radgrid_queue_dead_total", "radgrid_turnaround_seconds_sum", "radgrid_sla_breaches_total", "radgrid_gateway_instances_total"] {
            #expect(all.contains(name), "no panel uses \(name)")
        }
        // Each query parses: promtool checks them as recording rules (JSON is YAML).
        let promtool = try Self.promtool()
        let rules: [String: Any] = ["groups": [["name": "dashboard", "rules": expressions.enumerated().map { ["record": "dashboard:query_\($0.offset)", "expr": $0.element] }]]]
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rg-dashboard-\(UUID().uuidString).rules.json")
        // YAML has no `\/` escape: keep slashes as they are.
        try JSONSerialization.data(withJSONObject: rules, options: [.withoutEscapingSlashes]).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let check = try await Self.run(promtool, ["check", "rules", file.path], timeout: .seconds(60))
        #expect(check.code == 0, "a dashboard query does not parse:\n\(check.output)")
    }

    // MARK: Kubernetes

    @Test func theKubernetesManifestsPassValidateSh() async throws {
        try #require(Self.tool("python3") != nil, "python3 is missing")
        let validate = try await Self.run("/bin/bash", [Self.root + "/Ops/kubernetes/validate.sh"], timeout: .seconds(600))
        #expect(validate.code == 0, "Ops/kubernetes/validate.sh:\n\(validate.output)")
        #expect(validate.output.contains("validate.sh: all manifests valid"), "\(validate.output)")
    }

    /// Every manifest as JSON objects, by file (validate.sh --json reads the YAML).
    static func manifests() async throws -> [String: [[String: Any]]] {
        try #require(tool("python3") != nil, "python3 is missing")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("rg-manifests-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: out) }
        let dump = try await run("/bin/bash", [root + "/Ops/kubernetes/validate.sh", "--json", out.path], timeout: .seconds(600))
        try #require(dump.code == 0, "validate.sh --json:\n\(dump.output)")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: out))
        return try #require(object as? [String: [[String: Any]]])
    }

    static func objects(_ manifests: [String: [[String: Any]]], kind: String) -> [String: [String: Any]] {
        var result: [String: [String: Any]] = [:]
        for (_, documents) in manifests {
            for document in documents where document["kind"] as? String == kind {
                if let name = (document["metadata"] as? [String: Any])?["name"] as? String { result[name] = document }
            }
        }
        return result
    }

    @Test func everyDeploymentIsConfinedSizedAndReadsItsSecretsFromFiles() async throws {
        let manifests = try await Self.manifests()
        let deployments = Self.objects(manifests, kind: "Deployment")
        #expect(Set(deployments.keys) == Self.deployments)
        for (name, deployment) in deployments {
            let spec = try #require(deployment["spec"] as? [String: Any])
            let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any], "\(name)")
            let podSecurity = pod["securityContext"] as? [String: Any] ?? [:]
            #expect(podSecurity["runAsNonRoot"] as? Bool == true, "\(name): runAsNonRoot")
            #expect((podSecurity["seccompProfile"] as? [String: Any])?["type"] as? String == "RuntimeDefault", "\(name): seccomp")
            #expect(pod["automountServiceAccountToken"] as? Bool == false, "\(name): service account token mounted")
            let containers = pod["containers"] as? [[String: Any]] ?? []
            let all = containers + (pod["initContainers"] as? [[String: Any]] ?? [])
            for container in all {
                let label = "\(name)/\(container["name"] ?? "?")"
                #expect(container["image"] as? String == Self.image, "\(label): image")
                let security = container["securityContext"] as? [String: Any] ?? [:]
                #expect(security["allowPrivilegeEscalation"] as? Bool == false, "\(label): allowPrivilegeEscalation")
                #expect(security["readOnlyRootFilesystem"] as? Bool == true, "\(label): readOnlyRootFilesystem")
                #expect(((security["capabilities"] as? [String: Any])?["drop"] as? [String])?.contains("ALL") == true, "\(label): capabilities")
                let resources = container["resources"] as? [String: Any] ?? [:]
                let requests = resources["requests"] as? [String: Any] ?? [:]
                let limits = resources["limits"] as? [String: Any] ?? [:]
                #expect(requests["cpu"] != nil && requests["memory"] != nil, "\(label): resource requests")
                #expect(limits["memory"] != nil && limits["cpu"] != nil, "\(label): resource limits")
                // Secrets only as files: no Redis URL, password or token in an argument or a value.
                let arguments = ((container["args"] as? [String]) ?? []) + ((container["command"] as? [String]) ?? [])
                #expect(!arguments.contains { $0.contains("redis://") || $0 == "--redis" || $0 == "--token" }, "\(label): a secret on the command line")
                for variable in container["env"] as? [[String: Any]] ?? [] {
                    let variableName = variable["name"] as? String ?? ""
                    #expect(variableName != "REDIS_URL", "\(label): the Redis URL as an environment value")
                    #expect(!((variable["value"] as? String)?.contains("redis://") ?? false), "\(label): \(variableName) holds a Redis URL")
                    #expect(((variable["valueFrom"] as? [String: Any])?["secretKeyRef"]) == nil, "\(label): \(variableName) takes a Secret as an environment value")
                }
                // Probes only on /health, the one health endpoint the daemons serve.
                for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                    if let get = (container[probe] as? [String: Any])?["httpGet"] as? [String: Any] {
                        #expect(get["path"] as? String == "/health", "\(label): \(probe) on \(get["path"] ?? "?")")
                    }
                }
            }
            // The daemon: its Redis URL from the mounted file.
            let main = try #require(containers.first, "\(name)")
            let environment = (main["env"] as? [[String: Any]] ?? []).reduce(into: [String: String]()) { $0[$1["name"] as? String ?? ""] = $1["value"] as? String }
            #expect(environment["REDIS_URL_FILE"] == "/etc/radgrid/redis/redis-url", "\(name): REDIS_URL_FILE")
            let args = main["args"] as? [String] ?? []
            // Where the daemon has a key file option, it points at the private copy.
            if let index = args.firstIndex(of: "--blob-keys") {
                #expect(args[index + 1] == "/run/radgrid/keys/blob-keys.json", "\(name): --blob-keys")
                #expect(all.contains { $0["name"] as? String == "install-blob-keys" }, "\(name): no init container copies the key file")
            }
            // Probed where the daemon serves HTTP; through the bridge where it listens on 127.0.0.1.
            switch name {
            case "radgrid-gateway", "radgrid-portal":
                #expect(((main["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/health", "\(name): readiness")
            case "radgrid-dimse":
                #expect(args.contains("--metrics-port") && args.contains("0.0.0.0"), "\(name)")
                #expect(((main["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/health", "\(name): liveness")
            case "radgrid-coordinator", "radgrid-router", "radgrid-worker", "radgrid-worker-ai":
                #expect(args.contains("--metrics-port") && args.contains("$(POD_NAME)"), "\(name)")
                #expect(containers.contains { $0["name"] as? String == "metrics-bridge" }, "\(name): no metrics bridge")
                #expect(((main["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["port"] as? Int == 9465, "\(name): liveness")
            default:
                #expect(main["livenessProbe"] == nil && main["readinessProbe"] == nil, "\(name) serves no HTTP: no probe to make up")
            }
            let replicas = spec["replicas"] as? Int
            switch name {
            case "radgrid-coordinator": #expect(replicas == 2)
            case "radgrid-auditor", "radgrid-feed": #expect(replicas == 1)
            case "radgrid-worker":
                #expect(args.contains("instance,study") && args.contains("/etc/radgrid/models"), "\(args)")
            case "radgrid-worker-ai":
                #expect(args.contains("ai") && args.contains("/etc/radgrid/models"), "\(args)")
            default: break
            }
        }
        // A disruption budget for every replicated role.
        let budgets = Set(Self.objects(manifests, kind: "PodDisruptionBudget").keys)
        #expect(budgets == ["radgrid-gateway", "radgrid-dimse", "radgrid-coordinator", "radgrid-router", "radgrid-worker", "radgrid-portal"])
        let services = Self.objects(manifests, kind: "Service")
        let ports = services.mapValues { (($0["spec"] as? [String: Any])?["ports"] as? [[String: Any]] ?? []).compactMap { $0["port"] as? Int } }
        #expect(ports["radgrid-gateway"] == [8104] && ports["radgrid-portal"] == [8106] && ports["radgrid-dimse"] == [11112] && ports["radgrid-metrics"] == [9464])
        // Secrets are defined only in the template, and hold placeholders there.
        for (file, documents) in manifests where documents.contains(where: { $0["kind"] as? String == "Secret" }) {
            #expect(file == "secrets/secret-template.yaml", "\(file) defines a Secret")
            for secret in documents {
                for (key, value) in secret["stringData"] as? [String: String] ?? [:] where key != "username" {
                    #expect(value.contains("PLACEHOLDER"), "\(file): \(key) is not a placeholder")
                }
            }
        }
    }

    /// Every option a Deployment passes is one its daemon takes (`--help` of this build's binary
    /// lists it): a misspelt flag would only show as a crash loop in the cluster.
    @Test func theDaemonsTakeEveryOptionTheManifestsPass() async throws {
        let manifests = try await Self.manifests()
        for (name, deployment) in Self.objects(manifests, kind: "Deployment") {
            let pod = (((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]) ?? [:]
            let main = try #require((pod["containers"] as? [[String: Any]])?.first, "\(name)")
            let command = try #require((main["command"] as? [String])?.first, "\(name)")
            var args = main["args"] as? [String] ?? []
            let binary = GridEndToEndTests.binDir + "/" + (command as NSString).lastPathComponent
            try #require(FileManager.default.isExecutableFile(atPath: binary), "\(binary) is missing: build the executables (swift build)")
            var helpArguments = ["--help"]
            if binary.hasSuffix("/radgrid") {
                let subcommand = args.removeFirst()
                helpArguments = [subcommand, "--help"]
            }
            let help = try await Self.run(binary, helpArguments, timeout: .seconds(60))
            #expect(help.code == 0, "\(name): \(help.output)")
            let known = Set(try Self.options(in: help.output))
            for option in args where option.hasPrefix("--") {
                #expect(known.contains(option), "\(name): \((command as NSString).lastPathComponent) \(helpArguments.dropLast().joined()) takes no \(option)")
            }
        }
    }

    static func options(in help: String) throws -> [String] {
        let pattern = try NSRegularExpression(pattern: #"(?<![A-Za-z0-9-])--[a-z][a-z0-9-]*"#)
        return pattern.matches(in: help, range: NSRange(help.startIndex..., in: help)).map { (help as NSString).substring(with: $0.range) }
    }

    /// KEDA scales each pool on the lanes of its own queue: the streams are the queue's real
    /// keys (QueueKeys), read by the `workers` group, waiting (lag) and leased (pending) each.
    @Test func kedaScalesEachPoolOnTheLaneStreamsOfItsQueue() async throws {
        let manifests = try await Self.manifests()
        let scaled = Self.objects(manifests, kind: "ScaledObject")
        let pools = ["radgrid-worker": GridKeys.taskQueue, "radgrid-worker-ai": GridKeys.modelQueue]
        #expect(Set(scaled.keys) == Set(pools.keys))
        for (name, queue) in pools {
            let spec = try #require(scaled[name]?["spec"] as? [String: Any], "\(name)")
            #expect((spec["scaleTargetRef"] as? [String: Any])?["name"] as? String == name)
            let triggers = spec["triggers"] as? [[String: Any]] ?? []
            let lanes = Set(QueueKeys(prefix: .default, name: queue).lanes)
            #expect(lanes.count == 4)
            var waiting = Set<String>(), leased = Set<String>()
            for trigger in triggers {
                #expect(trigger["type"] as? String == "redis-streams")
                let metadata = trigger["metadata"] as? [String: String] ?? [:]
                #expect(metadata["consumerGroup"] == "workers", "\(name): \(metadata)")
                guard let stream = metadata["stream"] else { Issue.record("\(name): a trigger without a stream"); continue }
                if metadata["lagCount"] != nil { waiting.insert(stream) }
                if metadata["pendingEntriesCount"] != nil { leased.insert(stream) }
                #expect((trigger["authenticationRef"] as? [String: Any])?["name"] as? String == "radgrid-keda-redis")
            }
            #expect(waiting == lanes, "\(name): lag triggers \(waiting.sorted()) against lanes \(lanes.sorted())")
            #expect(leased == lanes, "\(name): pending-entries triggers \(leased.sorted()) against lanes \(lanes.sorted())")
        }
    }
}
