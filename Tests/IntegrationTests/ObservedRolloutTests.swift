import Foundation
import HTTPTransport
import Orchestrator
import Provenance
import TestSupport
import Testing

/// A release seen from outside while it runs: webhooks on loopback (one answering, one down,
/// one that stalls), a real Pushgateway that the playground's Prometheus scrapes, and
/// `orchestrate status --watch` in another process.
@Suite(.serialized) struct ObservedRolloutTests {
    /// Runs `body` with a Pushgateway on `port`, stopped afterwards. Its state is kept in the
    /// playground: Debian's build persists to /var/lib/prometheus/pushgateway.data by default, so
    /// every gateway started without the flag would load what others pushed (the demo's, an
    /// earlier test's).
    static func withPushgateway(port: Int, folder: String, _ body: () async throws -> Void) async throws {
        let gateway = try ChildProcess.spawn(
            "/usr/bin/prometheus-pushgateway",
            [
                "--web.listen-address=127.0.0.1:\(port)", "--persistence.file=\(folder)/pushgateway.data",
                "--log.level=warn",
            ],
            log: folder + "/pushgateway.log")
        defer {
            gateway.signal(SIGTERM)
        }
        var ready = false
        for _ in 0..<100 where !ready {
            ready =
                (try? await HTTPClient.get("http://127.0.0.1:\(port)/-/ready", limit: .forTests, timeout: .seconds(1)))?
                .status == 200
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard ready else {
            throw PlaygroundError("the Pushgateway did not become ready: \(read(folder + "/pushgateway.log"))")
        }
        try await body()
        gateway.signal(SIGTERM)
        _ = await gateway.wait()
    }

    /// The value of an instant query once Prometheus has it (nil after `within`).
    static func query(_ promql: String, port: Int, within: Duration = .seconds(15)) async throws -> Double? {
        let prometheus = PrometheusClient(baseURL: "http://127.0.0.1:\(port)")
        let deadline = ContinuousClock.now + within
        while ContinuousClock.now < deadline {
            if case .value(let value)? = try? await prometheus.query(promql) { return value }
            try await Task.sleep(for: .milliseconds(250))
        }
        return nil
    }

    @Test func aReleaseIsToldToWebhooksPushedToPrometheusAndWatchedToItsOutcome() async throws {
        try await Playground.with { playground in
            try await Self.withPushgateway(port: playground.pushgatewayPort, folder: playground.folder) {
                try await WebhookReceiver.with { receiver in
                    try await WebhookReceiver.with(.stall(seconds: 120)) { slow in
                        try await run(playground, receiver: receiver, slow: slow)
                    }
                }
            }
        }
    }

    func run(_ playground: Playground, receiver: WebhookReceiver, slow: WebhookReceiver) async throws {
        let down = try freePort()
        let environment = [
            "AUDIT_HOOK": receiver.url + "/audit/T0KEN-audit-42",
            "SLACK_WEBHOOK_URL": receiver.url + "/slack/T0KEN-slack-42",
            "DOWN_HOOK": "http://127.0.0.1:\(down)/T0KEN-down-42", "SLOW_HOOK": slow.url + "/T0KEN-slow-42",
        ]
        let observers = """
            notify:
              timeout: 2s
              retries: 1
              webhooks:
                - {name: audit, url: "${AUDIT_HOOK}"}
                - {name: team, format: slack, url: "${SLACK_WEBHOOK_URL}", events: [gate_failed, rolled_back, promoted]}
                - {name: down, url: "${DOWN_HOOK}"}
                - {name: slow, url: "${SLOW_HOOK}"}
            metrics:
              pushgateway: http://127.0.0.1:\(playground.pushgatewayPort)
            """
        try playground.writePipeline(extra: observers)
        let first = try await playground.run(environment: environment)
        #expect(first.outcome == .succeeded, "\(first.failure ?? "")")

        // The second release, watched from another process whose output is not a terminal.
        let watchLog = playground.folder + "/watch.log"
        let watcher = try ChildProcess.spawn(
            Playground.orchestrate, ["status", "--watch", playground.pipelinePath], environment: environment,
            log: watchLog)
        let second = try await playground.run(
            RunOptions(force: true), environment: environment.merging(["EPOCHS": "12"]) { $1 })
        let ended = Date()
        #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
        let watchStatus = await watcher.wait()
        let watched = read(watchLog)
        #expect(watchStatus >> 8 == 0, "a promoted release: exit 0\n\(watched)")
        #expect(watched.contains("release \(second.releaseID)  shifting  step 1/3"), "\(watched)")
        #expect(watched.contains("step 3/3"), "\(watched)")
        #expect(watched.contains("gates error-rate="), "the latest gate values: \(watched)")
        #expect(watched.contains("release \(second.releaseID): succeeded"), "\(watched)")

        // A stalled and a dead receiver delayed neither the steps nor the end beyond the bound.
        let rollout = try #require(second.rollout)
        // Each step_passed goes to the slow receiver (5 s per request: two 2 s attempts, 1 s apart)
        // between two steps: sent off the path, it leaves no gap there. On the path it would leave
        // at least 5 s; the bound is 4 s because a loaded machine's shift alone took 3.02 s once.
        for (step, next) in zip(rollout.steps, rollout.steps.dropFirst()) {
            let gap = next.startedOn.timeIntervalSince(step.finishedOn ?? step.startedOn)
            #expect(gap < 4, "\(gap) s between step \(step.weight)% and step \(next.weight)%")
        }
        let finishedOn = try #require(second.finishedOn)
        // Without the flush limit, the slow receiver's five queued events would hold it 25 s.
        #expect(
            ended.timeIntervalSince(finishedOn) < 5 + 8,
            "the run ended \(ended.timeIntervalSince(finishedOn)) s after its record")

        // What the answering receiver got for the second release, in order.
        let audit = receiver.requests.filter { $0.path.hasPrefix("/audit/") }.compactMap(\.json).filter {
            $0["release"] as? String == second.releaseID
        }
        #expect(
            audit.compactMap { $0["event"] as? String } == [
                "started", "step_passed", "step_passed", "step_passed", "promoted",
            ], "\(audit)")
        let passed = try #require(audit.first { $0["event"] as? String == "step_passed" })
        #expect(passed["weight"] as? Int == 25 && passed["step"] as? Int == 1 && passed["steps"] as? Int == 3)
        #expect((passed["measurements"] as? [[String: Any]])?.first?["gate"] as? String == "error-rate", "\(passed)")
        let slack = receiver.requests.filter { $0.path.hasPrefix("/slack/") }.compactMap(\.json)
        #expect(slack.count == 2, "promoted twice, nothing else chosen: \(slack)")
        #expect((slack.last?["text"] as? String)?.contains("promoted: \(rollout.target) is live") == true, "\(slack)")

        // The third release cannot pass its gate: rolled back, told with its values, watched to exit 1.
        try playground.writePipeline(gates: Playground.impossibleGate, extra: observers)
        let watcher2 = try ChildProcess.spawn(
            Playground.orchestrate, ["status", "--watch", playground.pipelinePath], environment: environment,
            log: watchLog + "2")
        let third = try await playground.run(
            RunOptions(force: true), environment: environment.merging(["EPOCHS": "12"]) { $1 })
        #expect(third.outcome == .rolledBack)
        #expect(await watcher2.wait() >> 8 == 1, "a rolled-back release: exit 1\n\(read(watchLog + "2"))")
        let failed = try #require(
            receiver.requests.compactMap(\.json).first {
                $0["event"] as? String == "gate_failed" && $0["release"] as? String == third.releaseID
            })
        let values = try #require(failed["measurements"] as? [[String: Any]])
        #expect(
            values.contains {
                $0["gate"] as? String == "impossible" && $0["value"] as? Double == 1
                    && $0["condition"] as? String == "<= 0.5"
            }, "\(failed)")
        #expect(
            receiver.requests.filter { $0.path.hasPrefix("/slack/") }.compactMap(\.json).contains {
                ($0["text"] as? String)?.contains("rolled back") == true
            })

        // The Pushgateway holds the last state; Prometheus scraped the rollout as it went.
        let pushed = String(
            decoding: try await HTTPClient.get(
                "http://127.0.0.1:\(playground.pushgatewayPort)/metrics", limit: .forTests
            ).body, as: UTF8.self)
        let idle = pushed.split(separator: "\n").first {
            $0.hasPrefix("orchestrate_rollout_phase{") && $0.contains(#"phase="idle""#)
        }
        let ours = pushed.split(separator: "\n").filter { $0.hasPrefix("orchestrate_") || $0.hasPrefix("push_") }
        #expect(
            idle?.hasSuffix(" 1") == true && idle?.contains(#"service="svc""#) == true,
            "\(ours.joined(separator: "\n"))")
        let port = playground.prometheusPort
        #expect(
            try await Self.query(
                #"orchestrate_releases_total{action="release",outcome="succeeded",service="svc"}"#, port: port) == 2)
        #expect(
            try await Self.query(#"orchestrate_releases_total{action="release",outcome="rolled_back"}"#, port: port)
                == 1)
        #expect(
            try await Self.query(#"max_over_time(orchestrate_rollout_phase{phase="shifting"}[10m])"#, port: port) == 1)
        #expect(
            try await Self.query(
                #"max_over_time(orchestrate_rollout_weight_percent{color="\#(rollout.target)"}[10m])"#, port: port)
                == 100)
        #expect(
            try await Self.query(#"max_over_time(orchestrate_gate_value{gate="impossible"}[10m])"#, port: port) == 1)
        #expect(try await Self.query(#"orchestrate_gate_bound{gate="impossible",bound="max"}"#, port: port) == 0.5)

        // No webhook URL in the history, the state files or the controller's logs.
        let stateFiles = ((try? FileManager.default.subpathsOfDirectory(atPath: playground.statePath)) ?? []).map {
            playground.statePath + "/" + $0
        }
        for file in [playground.historyPath] + stateFiles {
            #expect(!read(file).contains("T0KEN"), "\(file) holds a webhook URL")
        }
        #expect(!read(watchLog).contains("T0KEN"))
    }
}
