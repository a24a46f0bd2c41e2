import GridContract
import RadGridCore
import RedisClient
import Routing

/// Where a screened study goes: the reading specialty from its headers and findings, the
/// case priority from its own priority and the screen's urgency, the work weight, the
/// site's region.
public struct RoutePlanner: Sendable {
    public let client: RedisClient
    public let keys: GridKeys
    public let config: RoutingConfig

    public init(client: RedisClient, keys: GridKeys, config: RoutingConfig) {
        self.client = client
        self.keys = keys
        self.config = config
    }

    public func route(for record: StudyRecord) async throws -> RouteDecision {
        let region = try await client.send("HGET", RedisArgument(keys.siteRegions), RedisArgument(record.site.rawValue)).string
        return try Self.route(for: record, region: region.flatMap { $0.isEmpty ? nil : $0 }, config: config)
    }

    /// The pure part: no lookups.
    public static func route(for record: StudyRecord, region: String?, config: RoutingConfig) throws -> RouteDecision {
        let screening = record.screening
        let findings = (screening?.findingCodes() ?? []).compactMap(routingFinding)
        var priority = record.priority
        if let wanted = screening?.urgency.minimumPriority { priority = priority.raised(to: wanted) }
        var headers = screening?.headers ?? StudyDescriptors(modality: record.modality, bodyPartExamined: record.bodyPart)
        if headers.modality.isEmpty { headers.modality = record.modality }
        headers.findings = findings
        let (request, decision) = try CaseRequest.derive(id: "c0", descriptors: headers, seriesCount: max(1, screening?.series ?? 1),
                                                         site: record.site.rawValue, region: region, priority: priority, config: config)
        return RouteDecision(specialty: request.specialty.description, priority: priority, weight: request.weight, region: region, note: decision.note)
    }

    /// Screener finding codes → the router's finding words.
    static func routingFinding(_ code: String) -> String? {
        switch code {
        case "ct.head.hyperdensity": "hemorrhage"
        case "ct.chest.nodule": "nodule"
        default: nil
        }
    }
}
