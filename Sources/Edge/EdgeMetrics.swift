import Metrics

/// The edge's Prometheus series (served on the edge's `/metrics`).
enum Metrics {
    static let received = Counter(label: "radgrid_edge_instances_received_total")
    static let forwarded = Counter(label: "radgrid_edge_instances_forwarded_total")
    static let failed = Counter(label: "radgrid_edge_instances_failed_total")
    static let refused = Counter(label: "radgrid_edge_instances_refused_total", dimensions: [("reason", "spool-full")])
    static let committed = Counter(label: "radgrid_edge_studies_committed_total")
    static let wireBytes = Counter(label: "radgrid_edge_wire_bytes_total")
    static let uploads = Counter(label: "radgrid_edge_uploads_total", dimensions: [("outcome", "ok")])
    static func uploadFailed(_ kind: String) -> Counter { Counter(label: "radgrid_edge_uploads_total", dimensions: [("outcome", kind)]) }
    static let spoolBytes = Gauge(label: "radgrid_edge_spool_bytes")
    static let queuedStudies = Gauge(label: "radgrid_edge_queued_studies")
    static let oldestSeconds = Gauge(label: "radgrid_edge_oldest_waiting_seconds")
}
