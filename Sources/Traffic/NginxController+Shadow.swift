import Foundation
import HTTPTransport
import TextSafety

extension NginxController {
    /// What nginx counted of the shadow comparison in force (`GET /shadow` on the control socket);
    /// nil when it runs none.
    ///
    /// - Throws: `HTTPClient.TransportError` when nginx does not answer, `TrafficError` when it
    ///   answers something else than counts.
    public func shadow() async throws -> ShadowCounts? {
        let response = try await HTTPClient.send(
            HTTPClient.Request(
                method: "GET", url: "http://nginx/shadow", timeout: .seconds(3), limit: Self.controlAnswerLimit,
                unixSocket: config.controlSocket))
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            throw TrafficError(
                "nginx's control socket answered \(response.status) to GET /shadow: \(OutsideText.bounded(text, limit: 200))"
            )
        }
        return try ShadowCounts(parsing: text)
    }
}
