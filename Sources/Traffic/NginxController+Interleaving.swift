import Foundation
import HTTPTransport
import TextSafety

extension NginxController {
    /// The counts of the interleaving experiment nginx runs (`GET /interleaving` on the control
    /// socket); nil when it runs none.
    ///
    /// - Throws: `HTTPClient.TransportError` when nginx does not answer, `TrafficError` when it
    ///   answers something else than counts.
    public func interleaving() async throws -> InterleavingCounts? {
        let response = try await HTTPClient.send(
            HTTPClient.Request(
                method: "GET", url: "http://nginx/interleaving", timeout: .seconds(3), limit: Self.controlAnswerLimit,
                unixSocket: config.controlSocket))
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            throw TrafficError(
                "nginx's control socket answered \(response.status) to GET /interleaving: \(OutsideText.bounded(text, limit: 200))"
            )
        }
        return try InterleavingCounts(parsing: text)
    }
}
