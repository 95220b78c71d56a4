import Crypto
import Foundation
import Orchestrator
import Provenance
import TestSupport
import Testing
import Traffic

/// Webhook gates with a real HTTP receiver on loopback, real nginx and `recengine serve`: a
/// rollout waits for confirm-promotion until the receiver says yes, and a rollback webhook that
/// answers 2xx rolls the release back.
@Suite(.serialized) struct WebhookGateIntegrationTests {
    /// A gate that always has data: the webhooks decide, not Prometheus' first scrapes in a 2 s step.
    static let gate =
        "    - name: reachable\n      query: vector(0)\n      max: 1\n      initialDelay: 0s\n      interval: 1s\n      count: 1\n"

    static func webhook(_ name: String, _ type: String, _ url: String, extra: String = "") -> String {
        """
        webhooks:
          - name: \(name)
            type: \(type)
            url: "\(url)/\(name)"
            interval: 500ms
            timeout: 2s
            metadata: {team: recsys}
            secret: s3cret
        \(extra)
        """
    }

    @Test func aRolloutWaitsForConfirmPromotionAndGoesOnOnceTheReceiverSaysYes() async throws {
        try await WebhookReceiver.with(.answer(503)) { receiver in
            try await Playground.with { playground in
                try playground.writePipeline(gates: Self.gate, steps: "[50, 100]", wait: "2s")
                let first = try await playground.run(RunOptions(noStagedShift: true))
                try #require(first.outcome == .succeeded, "the first release: \(first.failure ?? "")")
                let live = try #require(first.deployment?.color)
                try playground.writePipeline(
                    gates: Self.gate, steps: "[50, 100]", wait: "2s",
                    extra: Self.webhook("approve-100", "confirm-promotion", receiver.url))
                async let second = playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])

                // It waits: asked again and again while the receiver says 503, all traffic on the new colour.
                let asked = await receiver.requests(atLeast: 3, within: .seconds(60))
                #expect(asked.count >= 3)
                let run = try StateStore(folder: playground.statePath).run()
                #expect(run?.waiting == "waiting for confirm-promotion approve-100", "\(String(describing: run))")
                #expect(try StateStore(folder: playground.statePath).live()?.releaseID == first.releaseID)
                receiver.answer(200)
                let record = try await second

                #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
                #expect(record.deployment?.color != live)
                let events = record.rollout?.events.filter { $0.kind == .webhook }.map(\.detail) ?? []
                #expect(events.first == "waiting for confirm-promotion approve-100 at 100%")
                #expect(events.contains("confirm-promotion approve-100: HTTP 503"))
                #expect(events.last == "confirm-promotion approve-100: HTTP 200")
                // Flagger's body, signed with the secret.
                let request = try #require(receiver.requests.first)
                #expect(request.path == "/approve-100")
                let body = try #require(request.json)
                #expect(body["name"] as? String == playground.service)
                #expect(body["namespace"] as? String == "svc")
                #expect(body["phase"] as? String == "Promoting")
                #expect(body["checksum"] as? String == record.releaseID)
                #expect(body["metadata"] as? [String: String] == ["team": "recsys"])
                let code = HMAC<SHA256>.authenticationCode(
                    for: request.body, using: SymmetricKey(data: Data("s3cret".utf8)))
                #expect(
                    request.headers["x-orchestrate-signature"]
                        == "sha256=" + code.map { String(format: "%02x", $0) }.joined())
                #expect(request.headers["x-orchestrate-webhook-type"] == "confirm-promotion")
            }
        }
    }

    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }

    @Test func aReceiverThatIsDownKeepsTheGateWaitingUntilOrchestrateApprove() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(gates: Self.gate, steps: "[50, 100]", wait: "2s")
            let first = try await playground.run(RunOptions(noStagedShift: true))
            try #require(first.outcome == .succeeded, "the first release: \(first.failure ?? "")")
            let pipeline = playground.pipelinePath
            let nobody = "http://127.0.0.1:\(try freePort())"
            let early = try await orchestrate(["approve", pipeline])
            #expect(early.status == 1, "no rollout in progress: \(early.stderr)")
            try playground.writePipeline(
                gates: Self.gate, steps: "[50, 100]", wait: "2s",
                extra: Self.webhook("approve-100", "confirm-promotion", nobody))
            let controller = try await playground.startController(
                until: .shifting, environment: ["EPOCHS": "12"], where: { $0.waiting != nil })
            // Asked every 500 ms meanwhile, each time unreachable.
            try await Task.sleep(for: .milliseconds(1500))

            let status = try await orchestrate(["status", pipeline])
            #expect(status.stdout.contains("waiting for confirm-promotion approve-100"), "\(status.stdout)")
            let approve = try await orchestrate(["approve", pipeline, "--by", "carol"])
            #expect(approve.status == 0, "\(approve.stderr)")
            #expect(approve.stdout.contains("approve requested"), "\(approve.stdout)")
            let exit = await controller.wait()
            #expect(
                exit >> 8 == 0,
                "promoted: \((try? String(contentsOfFile: playground.controllerLog, encoding: .utf8)) ?? "")")

            let last = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(last.outcome == .succeeded && last.releaseID != first.releaseID)
            let events = last.rollout?.events.filter { $0.kind == .webhook }.map(\.detail) ?? []
            #expect(events.contains { $0.hasPrefix("confirm-promotion approve-100: unreachable") }, "\(events)")
            #expect(events.last == "confirm-promotion approve-100: approved by hand by carol (orchestrate approve)")
            let answer = try #require(last.rollout?.gateAnswers?.last, "the record's table of answers")
            #expect(
                [answer.gate, answer.point, answer.answer, answer.by] == [
                    "confirm-promotion approve-100", "before the promotion", "approved (orchestrate approve)", "carol",
                ])
            #expect(!events.joined().contains(nobody), "the URL is a secret")
        }
    }

    /// A controller killed while a confirm gate waits leaves traffic at 100 % on a colour nobody
    /// promoted: `orchestrate recover` puts it back on the live colour and the record says which
    /// gate was waiting.
    @Test func aControllerKilledWhileAGateWaitsIsConvergedByRecover() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(gates: Self.gate, steps: "[50, 100]", wait: "1s")
            let first = try await playground.run(RunOptions(noStagedShift: true))
            try #require(first.outcome == .succeeded, "the first release: \(first.failure ?? "")")
            let live = try #require(first.deployment?.color)
            try playground.writePipeline(
                gates: Self.gate, steps: "[50, 100]", wait: "1s",
                extra: Self.webhook("approve-100", "confirm-promotion", "http://127.0.0.1:\(try freePort())"))
            let controller = try await playground.startController(
                until: .shifting, environment: ["EPOCHS": "12"], where: { $0.waiting != nil })
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let state = StateStore(folder: playground.statePath)
            let interrupted = try #require(try state.run())
            let target = try #require(interrupted.target)
            #expect(await playground.nginx.currentSplit()?.weight(of: target) == 100, "nobody promoted it")

            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stdout)\(recover.stderr)")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live], "traffic back on \(live)")
            #expect(try state.live()?.releaseID == first.releaseID)
            #expect(try state.run() == nil)
            let record = try #require(
                try ReleaseHistory(path: playground.historyPath).records().first {
                    $0.releaseID == interrupted.releaseID
                })
            #expect(record.outcome == .rolledBack)
            #expect(
                record.failure?.contains("interrupted while shifting (waiting for confirm-promotion approve-100)")
                    == true, "\(record.failure ?? "")")
            #expect(record.rollout?.events.contains { $0.kind == .recover } == true)
        }
    }

    @Test func aRollbackWebhookAnswering2xxRollsTheReleaseBack() async throws {
        try await WebhookReceiver.with(.answer(200)) { receiver in
            try await Playground.with { playground in
                try playground.writePipeline(gates: Self.gate, steps: "[50, 100]", wait: "2s")
                let first = try await playground.run(RunOptions(noStagedShift: true))
                try #require(first.outcome == .succeeded, "the first release: \(first.failure ?? "")")
                let live = try #require(first.deployment?.color)
                try playground.writePipeline(
                    gates: Self.gate, steps: "[50, 100]", wait: "2s",
                    extra: Self.webhook("kill-switch", "rollback", receiver.url))
                let record = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])

                #expect(record.outcome == .rolledBack)
                #expect(record.failure == "webhook rollback kill-switch answered HTTP 200: rolled back")
                #expect(record.rollout?.steps.count == 1, "stopped at the first step")
                #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
                #expect(try StateStore(folder: playground.statePath).live()?.releaseID == first.releaseID)
                #expect(receiver.requests.first?.json?["phase"] as? String == "Progressing")
            }
        }
    }
}
