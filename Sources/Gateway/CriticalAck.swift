import DICOMWeb
import CriticalResults
import Foundation
import GridContract
import Hummingbird
import RadGridCore

extension StowHandler {
    /// `POST /studies/{uid}/critical/ack` with the site's token and `{"by": "...", "method": "..."}`:
    /// the site confirms a person has the critical result. 200 with the result's state; 404 when
    /// the study has no critical result or it is another site's (one answer for both, so a site
    /// cannot probe other sites' studies); 400 for a malformed body. Idempotent: acknowledging
    /// again answers 200 with the first acknowledgement. The transition and its audit entry
    /// (chain `cr`, indexed by study) are one script.
    func acknowledgeCritical(_ request: Request, study text: String) async throws -> Response {
        let site = try await authenticate(request)
        let study: StudyUID
        do {
            // The site's own study under that UID (its copy, when another site holds the UID).
            study = try await store.resolve(site: site, study: try StudyUID(text))
        } catch let error as GatewayError {
            throw error
        } catch {
            throw GatewayError.notFound("no critical result for this study")
        }
        let body = Array(try await request.body.collect(upTo: 16 << 10).readableBytesView)
        let acknowledgement: CriticalAcknowledgementRequest
        do {
            acknowledgement = try CriticalAcknowledgementRequest(json: body)
        } catch {
            throw GatewayError(code: error.code, message: error.message, status: 400)
        }
        let results: [CriticalResult]
        do {
            results = try await critical.acknowledge(study: study, site: site, by: acknowledgement.by, method: acknowledgement.method,
                                                     now: WallClock.nowMilliseconds())
        } catch let error as CriticalResultError where error.codeValue == .notFound {
            throw GatewayError(code: error.code, message: error.message, status: 404)
        }
        let first = results.compactMap(\.acknowledgement).min { $0.atMs < $1.atMs }
        var object: [String: Any] = [
            "study": study.rawValue,
            "state": results.allSatisfy { $0.state == .acknowledged } ? CriticalState.acknowledged.rawValue : (results.first?.state.rawValue ?? ""),
            "results": results.map { ["id": $0.id, "source": $0.source.rawValue, "state": $0.state.rawValue] },
        ]
        if let first {
            object["acknowledged"] = ["by": first.by, "method": first.method, "at": WebhookBody.iso8601(milliseconds: first.atMs)]
        }
        return try json(object)
    }
}
