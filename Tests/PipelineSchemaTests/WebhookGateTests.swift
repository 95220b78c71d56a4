import Foundation
import OrchestratorSupport
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

/// `webhooks:`: what a gate reads, its defaults by type, and each mistake named with its path.
@Suite struct WebhookGateTests {
    static let pipeline =
        PipelineValidationTests.header + PipelineValidationTests.train + PipelineValidationTests.deploy

    func load(_ webhooks: String, environment: [String: String] = [:]) async throws -> Pipeline {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(Self.pipeline + webhooks, to: path)
            return try PipelineLoader(environment: environment).load(path)
        }
    }

    @Test func gatesAreReadWithTheirDefaultsByType() async throws {
        let pipeline = try await load(
            """
            webhooks:
              - name: approve-100
                type: confirm-promotion
                url: ${APPROVALS_URL}
                timeout: 2s
                retries: 2
                interval: 30s
                metadata: {team: recsys}
                secret: ${APPROVALS_SECRET}
              - {name: smoke, type: pre-rollout, url: "http://127.0.0.1:8099/smoke"}
              - {name: kill, type: rollback, url: "http://127.0.0.1:8099/kill", onUnreachable: fail}
              - {name: tell, type: post-rollout, url: "http://127.0.0.1:8099/tell"}

            """, environment: ["APPROVALS_URL": "https://approvals.example/gate", "APPROVALS_SECRET": "s3cret"])
        #expect(
            pipeline.webhooks == [
                WebhookGate(
                    name: "approve-100", kind: .confirmPromotion, url: "https://approvals.example/gate",
                    timeout: .seconds(2), retries: 2, interval: .seconds(30), onUnreachable: .wait,
                    metadata: ["team": "recsys"], secret: "s3cret"),
                WebhookGate(name: "smoke", kind: .preRollout, url: "http://127.0.0.1:8099/smoke"),
                WebhookGate(name: "kill", kind: .rollback, url: "http://127.0.0.1:8099/kill", onUnreachable: .fail),
                WebhookGate(name: "tell", kind: .postRollout, url: "http://127.0.0.1:8099/tell"),
            ])
        #expect(pipeline.webhooks[1].onUnreachable == .fail && pipeline.webhooks[1].timeout == .seconds(10))
        #expect(pipeline.webhooks[3].onUnreachable == .pass && pipeline.webhooks[3].interval == .seconds(5))
        // The secret is, whatever its variable is named; of the URL, only its user info and query
        // are (`run --dry-run` shows where a gate posts: PlannedRolloutTests).
        #expect(!pipeline.redaction.redact("at https://approvals.example/gate with s3cret").contains("s3cret"))
        #expect(pipeline.redaction.redact(pipeline.webhooks[0].displayURL) == "https://approvals.example/gate")
        #expect(try await load("").webhooks.isEmpty)
    }

    @Test func aKeyInTheURLPathIsHiddenLikeOneInItsQuery() {
        let key = "xoxb7Q2kLmN9pR4sT6vW8yZ1"
        let gate = WebhookGate(
            name: "approve", kind: .confirmPromotion, url: "https://hooks.example/services/T0001/B0002/\(key)?team=ml")
        #expect(gate.displayURL == "https://hooks.example/services/T0001/B0002/[redacted]?team=[redacted]")
        #expect(gate.secretURLParts.contains(key))
        #expect(!Redaction(values: gate.secretURLParts).redact("POST \(gate.url) failed").contains(key))
        // Names stay: the plan shows where a gate posts.
        #expect(
            WebhookGate(name: "a", kind: .preRollout, url: "http://127.0.0.1:8099/v2/approve").displayURL
                == "http://127.0.0.1:8099/v2/approve")
    }

    @Test(arguments: [
        ("webhooks:\n  - {name: a, type: confirm, url: \"http://x\"}\n", "webhooks.a.type", "is not one of"),
        ("webhooks:\n  - {name: a, type: event, url: \"http://x\"}\n", "webhooks.a.type", "notify.webhooks"),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"ftp://secret\"}\n", "webhooks.a.url",
            "its value is not shown"
        ),
        ("webhooks:\n  - {name: a, type: rollback}\n", "webhooks.a.url", "missing required key \"url\""),
        ("webhooks:\n  - {type: rollback, url: \"http://x\"}\n", "webhooks[0].name", "missing required key \"name\""),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"http://x\", onUnreachable: retry}\n",
            "webhooks.a.onUnreachable", "is not one of wait, fail, pass"
        ),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"http://x\", interval: 10ms}\n", "webhooks.a.interval",
            "must be at least 100ms"
        ),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"http://x\", retries: 99}\n", "webhooks.a.retries",
            "must be from 0 to 10"
        ),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"http://x\"}\n  - {name: a, type: rollback, url: \"http://y\"}\n",
            "webhooks[1].name", "duplicate webhook name"
        ),
        (
            "webhooks:\n  - {name: a, type: rollback, url: \"http://x\", secrets: s}\n", "webhooks[0].secrets",
            "did you mean \"secret\""
        ),
    ])
    func aMistakeIsToldWhereAndWhat(yaml: String, path: String, message: String) async throws {
        let error = await #expect(throws: PipelineValidationError.self) { try await load(yaml) }
        let issue = try #require(error?.issues.first { $0.message.contains(message) }, "\(String(describing: error))")
        #expect(issue.path == path, "\(issue)")
        #expect(!issue.message.contains("ftp://secret"))
    }
}
