import Foundation
import StrictYAML
import TestSupport
import Testing

@testable import Orchestrator
@testable import PipelineSchema

/// The real webhook caller against a real HTTP receiver on loopback: Flagger's body, the
/// signature, retries, a timeout, a receiver that is not there.
@Suite struct HTTPWebhookCallerTests {
    let caller = HTTPWebhookCaller(service: "recommender", namespace: "svc", releaseID: "20261207-1")

    @Test func theSignatureIsTheHMACSHA256OfTheBody() {
        // RFC 4231, test case 2.
        #expect(
            HTTPWebhookCaller.signature(of: Data("what do ya want for nothing?".utf8), secret: "Jefe")
                == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test func itPostsFlaggersBodySigned() async throws {
        try await WebhookReceiver.with(.answer(202)) { receiver in
            let gate = WebhookGate(
                name: "go", kind: .confirmPromotion, url: receiver.url + "/go", metadata: ["team": "recsys"],
                secret: "s3cret")
            #expect(await caller.call(gate, phase: "Promoting") == .status(202))
            let request = try #require(receiver.requests.first)
            #expect(request.method == "POST" && request.path == "/go")
            #expect(
                String(decoding: request.body, as: UTF8.self)
                    == #"{"checksum":"20261207-1","metadata":{"team":"recsys"},"name":"recommender","namespace":"svc","phase":"Promoting"}"#
            )
            #expect(
                request.headers["x-orchestrate-signature"]
                    == HTTPWebhookCaller.signature(of: request.body, secret: "s3cret"))
            #expect(request.headers["x-orchestrate-webhook-type"] == "confirm-promotion")
        }
    }

    @Test func aNoIsRetriedAndItsLastAnswerKept() async throws {
        try await WebhookReceiver.with(.answer(500)) { receiver in
            let gate = WebhookGate(name: "smoke", kind: .preRollout, url: receiver.url, retries: 2)
            #expect(await caller.call(gate, phase: "Progressing") == .status(500))
            #expect(receiver.requests.count == 3)
            #expect(receiver.requests.first?.headers["x-orchestrate-signature"] == nil, "no secret, no signature")
        }
    }

    @Test func aReceiverThatDoesNotAnswerInTimeIsUnreachable() async throws {
        try await WebhookReceiver.with(.stall(seconds: 30)) { receiver in
            let gate = WebhookGate(
                name: "slow", kind: .rollback, url: receiver.url, timeout: PipelineDuration(milliseconds: 300))
            let started = ContinuousClock.now
            #expect(await caller.call(gate, phase: "Progressing") == .unreachable("no answer within 300ms"))
            #expect(ContinuousClock.now - started < .seconds(15), "cut off long before the receiver answers")
        }
    }

    @Test func aReceiverThatIsNotThereIsUnreachable() async throws {
        let gate = WebhookGate(name: "down", kind: .rollback, url: "http://127.0.0.1:\(try freePort())/down")
        #expect(await caller.call(gate, phase: "Progressing") == .unreachable("transfer-failed"))
    }
}
