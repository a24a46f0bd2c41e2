import Accounts
import DICOM
import Foundation
import GridContract
import Hummingbird
import Imaging
import StudyStore

/// The read side of DICOMweb (PS3.18) under `/dicomweb`, for the reading page and any
/// DICOMweb viewer: QIDO-RS searches, WADO-RS instances, metadata, frames and rendered
/// images. Same bearer tokens and access rules as the API; every read of a study is written
/// to its audit chain as `study.viewed`.
struct DICOMweb: Sendable {
    let access: Access
    let images: StudyImages
    let store: StudyStore

    // MARK: QIDO-RS

    /// Study-level attributes returned by default (PS3.18 table 10.6.3-3, the ones we hold).
    static let studyTags: [Tag] = [Tag(0x0008, 0x0020), Tag(0x0008, 0x0030), Tag(0x0008, 0x0050), Tag(0x0008, 0x0090), Tag(0x0008, 0x1030),
                                   .patientName, Tag(0x0010, 0x0020), Tag(0x0010, 0x0030), Tag(0x0010, 0x0040),
                                   .studyInstanceUID, Tag(0x0020, 0x0010), Tag(0x0008, 0x0005)]
    static let seriesTags: [Tag] = [.modality, Tag(0x0008, 0x103E), .seriesInstanceUID, Tag(0x0020, 0x0011), Tag(0x0018, 0x0015), Tag(0x0008, 0x0005)]
    static let instanceTags: [Tag] = [Tag(0x0008, 0x0016), Tag(0x0008, 0x0018), .instanceNumber, .rows, .columns, Tag(0x0028, 0x0100), .numberOfFrames, Tag(0x0008, 0x0005)]

    /// Query parameters that are not attribute matches.
    static let controlParameters: Set<String> = ["limit", "offset", "includefield", "fuzzymatching", "accept", "charset"]

    struct Query {
        var matches: [(tag: Tag, value: String)] = []
        var include: Set<Tag> = []
        var includeAll = false
        var limit = 1000
        var offset = 0

        init(_ request: Request) throws {
            for (name, value) in request.uri.queryParameters {
                let key = String(name), text = String(value).removingPercentEncoding ?? String(value)
                switch key {
                case "limit":
                    guard let n = Int(text), n >= 0 else { throw PortalError.badRequest("limit must be a non-negative integer") }
                    limit = min(n, 10_000)
                case "offset":
                    guard let n = Int(text), n >= 0 else { throw PortalError.badRequest("offset must be a non-negative integer") }
                    offset = n
                case "includefield":
                    for item in text.split(separator: ",") {
                        if item == "all" { includeAll = true } else if let tag = DICOMweb.tag(String(item)) { include.insert(tag) } else {
                            throw PortalError.badRequest("includefield: unknown attribute '\(item.prefix(64))'")
                        }
                    }
                case _ where DICOMweb.controlParameters.contains(key):
                    continue
                default:
                    guard let tag = DICOMweb.tag(key) else { throw PortalError.badRequest("unknown query attribute '\(key.prefix(64))'") }
                    matches.append((tag, text))
                }
            }
        }
    }

    /// A keyword (`PatientID`) or 8 hex digits (`00100020`).
    static func tag(_ text: String) -> Tag? {
        if text.count == 8, let value = UInt32(text, radix: 16) { return Tag(UInt16(value >> 16), UInt16(value & 0xFFFF)) }
        return Tag(keyword: text)
    }

    /// Does `dataSet` satisfy one match? `*` and `?` wildcards for text, `a-b` ranges for
    /// dates, a list of UIDs separated by `,` or `\`; everything else matches exactly.
    static func matches(_ dataSet: DataSet, _ tag: Tag, _ wanted: String, values override: [String]? = nil) -> Bool {
        if wanted.isEmpty { return true }
        let values = override ?? (tag == .patientName ? (dataSet.personNames(tag) ?? []).map(\.description) : (dataSet.strings(tag) ?? []))
        if tag.keyword?.hasSuffix("Date") == true, wanted.contains("-") {
            let bounds = wanted.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard bounds.count == 2 else { return false }
            return values.contains { ($0 >= bounds[0] || bounds[0].isEmpty) && ($0 <= bounds[1] || bounds[1].isEmpty) }
        }
        if tag.keyword?.hasSuffix("UID") == true {
            let list = Set(wanted.split(whereSeparator: { $0 == "," || $0 == "\\" }).map(String.init))
            return values.contains { list.contains($0) }
        }
        if wanted.contains("*") || wanted.contains("?") {
            return values.contains { wildcard(wanted.lowercased(), $0.lowercased()) }
        }
        return values.contains(wanted)
    }

    static func wildcard(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var i = 0, j = 0, star = -1, mark = 0
        while j < t.count {
            if i < p.count, p[i] == "?" || p[i] == t[j] { i += 1; j += 1 } else if i < p.count, p[i] == "*" { star = i; mark = j; i += 1 } else if star >= 0 {
                i = star + 1; mark += 1; j = mark
            } else { return false }
        }
        while i < p.count, p[i] == "*" { i += 1 }
        return i == p.count
    }

    func searchStudies(_ request: Request, principal: Principal, baseURL: String) async throws -> Response {
        let query = try Query(request)
        var results: [JSONValue] = []
        var matched = 0
        for uid in try await access.searchableStudies(for: principal) {
            if let uidMatch = query.matches.first(where: { $0.tag == .studyInstanceUID }), !Self.matches(DataSet(), .studyInstanceUID, uidMatch.value, values: [uid.rawValue]) { continue }
            guard let record = try? await access.study(uid, for: principal) else { continue }
            let entries = try await store.instances(uid)
            guard let first = entries.first, let header = try? await images.header(uid, first.sop) else { continue }
            let modalities = Array(Set(entries.map(\.modality).filter { !$0.isEmpty })).sorted()
            var ok = true
            for (tag, value) in query.matches where tag != .studyInstanceUID {
                let override: [String]? = tag == Tag(0x0008, 0x0061) ? modalities : nil
                if !Self.matches(header, tag, value, values: override) { ok = false; break }
            }
            guard ok else { continue }
            matched += 1
            if results.count >= query.limit { break }
            guard matched > query.offset, results.count < query.limit else { continue }
            var object = Self.select(header, Self.studyTags, query)
            object["00080061"] = .object(["vr": .string("CS"), "Value": .array(modalities.map(JSONValue.string))])
            object["00201206"] = .object(["vr": .string("IS"), "Value": .array([.int(Set(entries.compactMap(\.series)).count)])])
            object["00201208"] = .object(["vr": .string("IS"), "Value": .array([.int(entries.count)])])
            object["00081190"] = .object(["vr": .string("UR"), "Value": .array([.string("\(baseURL)/dicomweb/studies/\(uid)")])])
            results.append(.object(object))
            try await access.recordView(uid, by: principal, what: "via=dicomweb;what=search;state=\(record.state.rawValue)")
        }
        return Self.jsonResponse(.array(results))
    }

    /// The default attributes of a level, plus `includefield` (from the same header).
    static func select(_ header: DataSet, _ defaults: [Tag], _ query: Query) -> [String: JSONValue] {
        let wanted: Set<Tag>? = query.includeAll ? nil : Set(defaults).union(query.include)
        guard case .object(let object) = DICOMJSON.encode(header, include: wanted) else { return [:] }
        return object
    }

    func searchSeries(_ request: Request, study: StudyUID, principal: Principal, baseURL: String) async throws -> Response {
        let query = try Query(request)
        _ = try await access.study(study, for: principal)
        let entries = try await store.instances(study)
        var firstOfSeries: [String: (sop: SOPInstanceUID, count: Int)] = [:]
        for entry in entries {
            let key = entry.series?.rawValue ?? ""
            firstOfSeries[key] = (firstOfSeries[key]?.sop ?? entry.sop, (firstOfSeries[key]?.count ?? 0) + 1)
        }
        var rows: [(number: Int, uid: String, object: [String: JSONValue])] = []
        for (series, info) in firstOfSeries {
            guard let header = try? await images.header(study, info.sop) else { continue }
            if query.matches.contains(where: { !Self.matches(header, $0.tag, $0.value) }) { continue }
            var object = Self.select(header, Self.seriesTags, query)
            object["00201209"] = .object(["vr": .string("IS"), "Value": .array([.int(info.count)])])
            object["00081190"] = .object(["vr": .string("UR"), "Value": .array([.string("\(baseURL)/dicomweb/studies/\(study)/series/\(series)")])])
            rows.append((header.int(Tag(0x0020, 0x0011)) ?? 0, series, object))
        }
        rows.sort { $0.number != $1.number ? $0.number < $1.number : $0.uid < $1.uid }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=series-search")
        return Self.jsonResponse(.array(rows.dropFirst(query.offset).prefix(query.limit).map { .object($0.object) }))
    }

    func searchInstances(_ request: Request, study: StudyUID, series: SeriesUID?, principal: Principal, baseURL: String) async throws -> Response {
        let query = try Query(request)
        _ = try await access.study(study, for: principal)
        let entries = try await store.instances(study).filter { series == nil || $0.series == series }
        let headers = try await images.headers(study, entries.map(\.sop))
        var rows: [(series: String, number: Int, sop: String, object: [String: JSONValue])] = []
        for entry in entries {
            guard let header = headers[entry.sop] else { continue }
            if query.matches.contains(where: { !Self.matches(header, $0.tag, $0.value) }) { continue }
            var object = Self.select(header, Self.instanceTags + [.seriesInstanceUID, .studyInstanceUID], query)
            // The study as the portal names it (a site's copy of a UID another site holds has its own).
            object["0020000D"] = .object(["vr": .string("UI"), "Value": .array([.string(study.rawValue)])])
            let seriesUID = entry.series?.rawValue ?? header.string(.seriesInstanceUID) ?? ""
            object["00081190"] = .object(["vr": .string("UR"), "Value": .array([.string("\(baseURL)/dicomweb/studies/\(study)/series/\(seriesUID)/instances/\(entry.sop)")])])
            rows.append((seriesUID, header.int(.instanceNumber) ?? 0, entry.sop.rawValue, object))
        }
        rows.sort { ($0.series, $0.number, $0.sop) < ($1.series, $1.number, $1.sop) }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=instance-search" + (series.map { ";series=\($0)" } ?? ""))
        return Self.jsonResponse(.array(rows.dropFirst(query.offset).prefix(query.limit).map { .object($0.object) }))
    }

    // MARK: WADO-RS

    /// Instances of a study, a series or one instance, as `multipart/related; type="application/dicom"`.
    func retrieve(study: StudyUID, series: SeriesUID?, sop: SOPInstanceUID?, principal: Principal) async throws -> Response {
        _ = try await access.study(study, for: principal)
        let entries = try await selected(study: study, series: series, sop: sop)
        var parts: [[UInt8]] = []
        for entry in entries { parts.append(try await images.file(study, entry.sop)) }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=instances" + Self.scope(series, sop) + ";count=\(parts.count)")
        return Multipart.response(parts: parts.map { ("application/dicom", $0) }, type: "application/dicom")
    }

    func metadata(study: StudyUID, series: SeriesUID?, sop: SOPInstanceUID?, principal: Principal, baseURL: String) async throws -> Response {
        _ = try await access.study(study, for: principal)
        let entries = try await selected(study: study, series: series, sop: sop)
        let headers = try await images.headers(study, entries.map(\.sop))
        let outcomes = try await store.outcomes(study)
        var objects: [JSONValue] = []
        for entry in entries {
            guard let header = headers[entry.sop] else { continue }
            let seriesUID = entry.series?.rawValue ?? header.string(.seriesInstanceUID) ?? ""
            let base = "\(baseURL)/dicomweb/studies/\(study)/series/\(seriesUID)/instances/\(entry.sop)"
            var dataSet = header
            // The study as the portal names it (a site's copy of a UID another site holds has its own).
            dataSet.set(.studyInstanceUID, study.rawValue, vr: .UI)
            // Pixel data is bulk data: name where its frames are.
            if outcomes[entry.sop] == .image { dataSet.set(.pixelData, vr: .OB, bytes: []) }
            objects.append(DICOMJSON.encode(dataSet) { tag in tag == .pixelData ? base + "/frames/1" : nil })
        }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=metadata" + Self.scope(series, sop))
        return Self.jsonResponse(.array(objects))
    }

    /// Decoded frames (1-based, `1,3,5`) as `multipart/related; type="application/octet-stream"`.
    func frames(study: StudyUID, series: SeriesUID, sop: SOPInstanceUID, list: String, principal: Principal) async throws -> Response {
        _ = try await access.study(study, for: principal)
        _ = try await selected(study: study, series: series, sop: sop)
        let numbers = list.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !numbers.isEmpty, numbers.count <= 1000, numbers.allSatisfy({ ($0 ?? 0) >= 1 }) else {
            throw PortalError.badRequest("frames: a comma-separated list of frame numbers from 1")
        }
        let decoded = try await images.decoded(study, sop)
        let image = decoded.image
        var parts: [(String, [UInt8])] = []
        for number in numbers.compactMap({ $0 }) {
            guard number <= image.frames else { throw PortalError.notFound("frame \(number) does not exist (the instance has \(image.frames))") }
            parts.append(("application/octet-stream", image.littleEndianBytes(frame: number - 1)))
        }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=frames;series=\(series);sop=\(sop);frames=\(list.prefix(64))")
        return Multipart.response(parts: parts, type: "application/octet-stream")
    }

    /// One frame for display: `window=center,width[,function]`, PNG (default) or JPEG by `Accept`.
    func rendered(_ request: Request, study: StudyUID, series: SeriesUID, sop: SOPInstanceUID, frame: Int, principal: Principal) async throws -> Response {
        _ = try await access.study(study, for: principal)
        var window: VOIWindow?
        if let text = request.uri.queryParameters.get("window") {
            let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count >= 2, let center = parts[0], let width = parts[1], width >= 1, center.isFinite, width.isFinite else {
                throw PortalError.badRequest("window must be center,width with width >= 1")
            }
            window = VOIWindow(center: center, width: width)
        }
        let accept = (request.headers[.accept] ?? "image/png").lowercased()
        let wantsJPEG = accept.contains("image/jpeg") && !accept.contains("image/png")
        guard wantsJPEG || accept.contains("image/png") || accept.contains("image/*") || accept.contains("*/*") else {
            throw PortalError.notAcceptable("rendered images are image/png or image/jpeg")
        }
        let display = try await images.render(study, sop, frame: frame, window: window)
        let body = wantsJPEG ? try display.jpeg(quality: 90) : try display.png()
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=rendered;series=\(series);sop=\(sop);frame=\(frame)")
        return Reply.bytes(body, type: wantsJPEG ? "image/jpeg" : "image/png")
    }

    /// The series' worklist thumbnail (made by the workers).
    func thumbnail(study: StudyUID, series: SeriesUID, principal: Principal) async throws -> Response {
        _ = try await access.study(study, for: principal)
        guard let png = try await store.client.send("HGET", .init(store.keys.study(study).thumbnails), .init(series.rawValue)).bytes else {
            throw PortalError.notFound("no thumbnail for this series")
        }
        try await access.recordView(study, by: principal, what: "via=dicomweb;what=thumbnail;series=\(series)")
        return Reply.bytes(png, type: "image/png")
    }

    // MARK: Helpers

    func selected(study: StudyUID, series: SeriesUID?, sop: SOPInstanceUID?) async throws -> [InstanceEntry] {
        let entries = try await store.instances(study).filter { (series == nil || $0.series == series) && (sop == nil || $0.sop == sop) }
        guard !entries.isEmpty else { throw PortalError.notFound(sop != nil ? "no such instance" : series != nil ? "no such series" : "the study has no instances") }
        return entries
    }

    static func scope(_ series: SeriesUID?, _ sop: SOPInstanceUID?) -> String {
        (series.map { ";series=\($0)" } ?? "") + (sop.map { ";sop=\($0)" } ?? "")
    }

    static func jsonResponse(_ value: JSONValue) -> Response {
        Reply.bytes(Array(value.serialized().utf8), type: "application/dicom+json")
    }
}

/// `multipart/related` bodies (RFC 2387), as WADO-RS returns them.
enum Multipart {
    static func response(parts: [(type: String, body: [UInt8])], type: String) -> Response {
        var random = SystemRandomNumberGenerator()
        let boundary = "radgrid-" + (0..<4).map { _ in String(UInt32.random(in: 0...UInt32.max, using: &random), radix: 16) }.joined()
        var body: [UInt8] = []
        body.reserveCapacity(parts.reduce(0) { $0 + $1.body.count + 128 })
        for part in parts {
            body += Array("--\(boundary)\r\nContent-Type: \(part.type)\r\n\r\n".utf8)
            body += part.body
            body += Array("\r\n".utf8)
        }
        body += Array("--\(boundary)--\r\n".utf8)
        return Reply.bytes(body, type: "multipart/related; type=\"\(type)\"; boundary=\(boundary)")
    }
}
