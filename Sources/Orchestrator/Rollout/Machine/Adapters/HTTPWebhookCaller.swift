import Crypto
import Foundation
import HTTPTransport
import PipelineSchema
import StrictYAML

/// Asks webhook gates over HTTP (libcurl, through `HTTPClient`): a POST of Flagger's body
/// (`name`, `namespace`, `phase`, `checksum`, `metadata`), each attempt within the webhook's
/// `timeout`, its answer's body bounded, retried `retries` times 1 s apart while the answer is
/// not a 2xx. With a `secret`, `X-Orchestrate-Signature: sha256=HEX` is the HMAC-SHA256 of the
/// body under it.
struct HTTPWebhookCaller: WebhookCaller {
    /// The body's `name`: the deployed service.
    var service: String
    /// The body's `namespace`: the pipeline's name.
    var namespace: String
    /// The body's `checksum`: the release id.
    var releaseID: String

    static let limit = HTTPClient.BodyLimit(
        64 << 10, for: "a webhook gate's answer", hint: "a webhook's answer is read for its status only")

    /// Flagger's body, keys sorted (the bytes signed are the bytes sent).
    static func body(
        service: String, namespace: String, phase: String, releaseID: String, metadata: [String: String]
    )
        -> Data
    {
        struct Payload: Encodable {
            var name: String
            var namespace: String
            var phase: String
            var checksum: String
            var metadata: [String: String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let payload = Payload(
            name: service, namespace: namespace, phase: phase, checksum: releaseID, metadata: metadata)
        return (try? encoder.encode(payload)) ?? Data("{}".utf8)
    }

    /// `sha256=` and the HMAC-SHA256 of `body` under `secret`, in lower-case hex.
    static func signature(of body: Data, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    func call(_ webhook: WebhookGate, phase: String) async -> RolloutMachine.WebhookAnswer {
        let body = Self.body(
            service: service, namespace: namespace, phase: phase, releaseID: releaseID, metadata: webhook.metadata)
        var headers = ["Content-Type: application/json", "X-Orchestrate-Webhook-Type: \(webhook.kind.rawValue)"]
        if let secret = webhook.secret {
            headers.append("X-Orchestrate-Signature: \(Self.signature(of: body, secret: secret))")
        }
        var answer = RolloutMachine.WebhookAnswer.unreachable("not asked")
        for attempt in 0...webhook.retries {
            if attempt > 0 {
                do { try await Task.sleep(for: .seconds(1)) } catch { return answer }
            }
            if Task.isCancelled { return answer }
            do {
                let response = try await HTTPClient.post(
                    webhook.url, body: body, limit: Self.limit, timeout: webhook.timeout.duration, headers: headers)
                answer = .status(response.status)
            } catch let error as HTTPClient.TransportError {
                // The URL is a secret: only what went wrong is kept.
                answer = .unreachable(error.code == .timedOut ? "no answer within \(webhook.timeout)" : "\(error.code)")
            } catch {
                return .unreachable("cancelled")
            }
            if answer.isYes { return answer }
        }
        return answer
    }
}
