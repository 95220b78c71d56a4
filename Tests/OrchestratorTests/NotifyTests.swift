import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import OrchestratorSupport
@testable import PipelineSchema
@testable import Provenance

/// `notify:` and `metrics:` in the pipeline, and the outbox that sends off the rollout's path,
/// against real HTTP receivers on loopback.
@Suite struct NotifyTests {
    static let base = """
        version: 1
        name: demo
        stages:
          - name: x
            run: ["true"]

        """
    static let secretURL = "http://127.0.0.1:9/hooks/T0KEN-s3cr3t-path"

    func load(_ yaml: String, environment: [String: String] = ["HOOK_URL": secretURL]) async throws -> Pipeline {
        try await withTemporaryDirectory { folder in
            try write(yaml, to: folder + "/p.yml")
            return try PipelineLoader(environment: environment).load(folder + "/p.yml")
        }
    }

    func problems(_ yaml: String, environment: [String: String] = ["HOOK_URL": secretURL]) async -> String {
        do {
            _ = try await load(yaml, environment: environment)
            return ""
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        ("notify:\n  webhooks: []\n", "list at least one webhook"),
        (
            "notify:\n  webhooks:\n    - {name: a, url: \"ftp://x/T0KEN-s3cr3t-path\"}\n",
            "is not an http:// or https:// URL (its value is not shown"
        ),
        (
            "notify:\n  webhooks:\n    - {name: a, url: \"${HOOK_URL}\", events: [promotd]}\n",
            "did you mean \"promoted\"?"
        ),
        (
            "notify:\n  webhooks:\n    - {name: a, url: \"${HOOK_URL}\", format: teams}\n",
            "\"teams\" is not one of json, slack"
        ),
        (
            "notify:\n  webhooks:\n    - {name: a, url: \"${HOOK_URL}\"}\n    - {name: a, url: \"${HOOK_URL}\"}\n",
            "duplicate webhook name \"a\""
        ),
        ("notify:\n  webhooks:\n    - {name: a, url: \"${UNSET_HOOK}\"}\n", "variable ${UNSET_HOOK} is not set"),
        ("notify:\n  timeout: 10ms\n  webhooks:\n    - {name: a, url: \"${HOOK_URL}\"}\n", "must be at least 100ms"),
        ("notify:\n  webhooks:\n    - {name: a, urls: x}\n", "did you mean \"url\"?"),
        ("metrics:\n  pushgateway: localhost:9091\n", "is not an http:// or https:// URL"),
        ("metrics: {}\n", "missing required key \"pushgateway\""),
    ])
    func invalidNotifyAndMetricsAreRefusedWithoutShowingTheSecret(yaml: String, message: String) async {
        let text = await problems(Self.base + yaml)
        #expect(text.contains(message), "\(text)")
        #expect(!text.contains("T0KEN-s3cr3t-path"), "a webhook URL is a secret: \(text)")
    }

    @Test func aValidNotifyKeepsItsURLOutOfThePlanAndRedactsIt() async throws {
        let pipeline = try await load(
            Self.base + """
                notify:
                  timeout: 2s
                  retries: 1
                  webhooks:
                    - name: team-slack
                      format: slack
                      url: ${HOOK_URL}
                      events: [gate_failed, rolled_back, promoted]
                    - name: audit
                      url: ${HOOK_URL}
                      headers: {Authorization: "Bearer plain-value-42"}
                metrics:
                  pushgateway: http://127.0.0.1:9091/
                """)
        let notify = try #require(pipeline.notify)
        #expect(notify.webhooks.map(\.name) == ["team-slack", "audit"])
        #expect(notify.webhooks[0].events == [.gateFailed, .rolledBack, .promoted])
        #expect(notify.webhooks[1].events == NotifyEvent.allCases, "all events by default")
        #expect(notify.timeout == .seconds(2) && notify.retries == 1)
        #expect(pipeline.metrics?.pushgateway == "http://127.0.0.1:9091")
        #expect(
            pipeline.redaction.redact("posting to \(Self.secretURL) with Bearer plain-value-42")
                == "posting to [redacted] with [redacted]")
        let plan = try await ReleaseController(pipeline: pipeline).plan()
        let rendered = plan.rendered()
        #expect(rendered.contains("notify team-slack (slack"), "\(rendered)")
        #expect(rendered.contains("metrics: the controller's state pushed to the Pushgateway at http://127.0.0.1:9091"))
        let json = String(decoding: try JSONEncoder().encode(plan), as: UTF8.self)
        #expect(!rendered.contains("T0KEN") && !json.contains("T0KEN") && !json.contains("plain-value-42"))
    }

    // MARK: Delivery

    static func notifier(
        _ webhooks: [NotifySpec.Webhook], retries: Int = 1, warnings: LineCollector
    ) -> (Outbox, WebhookNotifier) {
        let spec = NotifySpec(timeout: .seconds(1), retries: retries, webhooks: webhooks)
        let destinations = WebhookNotifier.destinations(spec).map { destination -> Outbox.Destination in
            var destination = destination
            destination.backoff = .milliseconds(100)
            return destination
        }
        let redaction = Redaction(values: webhooks.map(\.url))
        let outbox = Outbox(destinations: destinations, redaction: redaction, warn: { warnings.append($0) })
        return (
            outbox,
            WebhookNotifier(
                spec: spec, outbox: outbox, pipeline: "demo", service: "svc", redaction: redaction,
                approve: "orchestrate approve pipelines/demo.yml")
        )
    }

    static let failedGate = GateMeasurement(
        outcome: "failure", gate: "error-rate", query: "q", value: 0.31, condition: "<= 0.05", at: Date(), error: nil)

    @Test func eventsReachTheReceiverAsGenericJSONAndSlackMessages() async throws {
        try await WebhookReceiver.with { receiver in
            let warnings = LineCollector()
            let (outbox, notifier) = Self.notifier(
                [
                    .init(name: "json", format: .json, url: receiver.url + "/generic", headers: ["X-Token": "abc"]),
                    .init(name: "slack", format: .slack, url: receiver.url + "/slack", events: [.gateFailed]),
                ], warnings: warnings)
            try await outbox.delivering {
                notifier.observe(RunEvent(releaseID: "rel-1", at: Date(), kind: .started(live: "blue")))
                var state = RunState(
                    releaseID: "rel-1", pid: 1, startedOn: Date(), phase: .shifting, target: "green", weight: 25)
                state.live = LiveRelease(color: "blue", releaseID: "rel-0", modelSHA256: "0", modelVersion: "v0")
                notifier.observe(RunEvent(releaseID: "rel-1", at: Date(), kind: .progress(state)))
                notifier.observe(
                    RunEvent(
                        releaseID: "rel-1", at: Date(),
                        kind: .gateFailed(
                            weight: 25, failure: "gate error-rate: 0.31 is not <= 0.05", measurements: [Self.failedGate]
                        )))
                notifier.observe(
                    RunEvent(
                        releaseID: "rel-1", at: Date(),
                        kind: .rolledBack(reason: "gate error-rate failed", interrupted: false)))
            }
            let received = receiver.requests
            let generic = received.filter { $0.path == "/generic" }.compactMap(\.json)
            #expect(
                generic.map { $0["event"] as? String } == ["started", "gate_failed", "rolled_back"],
                "in order, one sender per webhook")
            #expect(received.first { $0.path == "/generic" }?.headers["x-token"] == "abc")
            #expect(received.allSatisfy { $0.method == "POST" && $0.headers["content-type"] == "application/json" })
            let failed = try #require(generic.first { $0["event"] as? String == "gate_failed" })
            #expect(failed["release"] as? String == "rel-1")
            #expect(
                failed["target"] as? String == "green" && failed["live"] as? String == "blue"
                    && failed["weight"] as? Int == 25)
            let measurement = try #require((failed["measurements"] as? [[String: Any]])?.first)
            #expect(
                measurement["gate"] as? String == "error-rate" && measurement["value"] as? Double == 0.31
                    && measurement["condition"] as? String == "<= 0.05")
            let slack = try #require(received.first { $0.path == "/slack" }?.json)
            #expect((slack["text"] as? String)?.contains("gate error-rate: 0.31 is not <= 0.05") == true, "\(slack)")
            let blocks = try #require(slack["blocks"] as? [[String: Any]])
            #expect(blocks.count == 2)
            let slackBody = String(decoding: try #require(received.first { $0.path == "/slack" }).body, as: UTF8.self)
            #expect(slackBody.contains("`error-rate` 0.3100 (<= 0.05): failure"), "\(slackBody)")
            #expect(received.filter { $0.path == "/slack" }.count == 1, "slack chose gate_failed only")
            #expect(warnings.lines.isEmpty, "\(warnings.lines)")
        }
    }

    @Test func aWaitingGateIsToldWithTheCommandThatAnswersItAndItsAnswerWithWhoGaveIt() async throws {
        try await WebhookReceiver.with { receiver in
            let warnings = LineCollector()
            let (outbox, notifier) = Self.notifier(
                [
                    .init(name: "json", format: .json, url: receiver.url + "/generic"),
                    .init(name: "slack", format: .slack, url: receiver.url + "/slack", events: [.gateWaiting]),
                ], warnings: warnings)
            try await outbox.delivering {
                notifier.observe(
                    RunEvent(
                        releaseID: "rel-1", at: Date(),
                        kind: .gateWaiting(
                            gate: "confirm-traffic-increase more", point: "before step 2", step: 2, weight: 25)))
                notifier.observe(
                    RunEvent(
                        releaseID: "rel-1", at: Date(),
                        kind: .gateAnswered(
                            gate: "confirm-traffic-increase more", point: "before step 2", step: 2,
                            answer: "approved (orchestrate approve)", by: "alice")))
            }
            let received = receiver.requests
            let generic = received.filter { $0.path == "/generic" }.compactMap(\.json)
            #expect(generic.map { $0["event"] as? String } == ["gate_waiting", "gate_answered"])
            let waiting = try #require(generic.first)
            #expect(waiting["gate"] as? String == "confirm-traffic-increase more" && waiting["step"] as? Int == 2)
            #expect(waiting["command"] as? String == "orchestrate approve pipelines/demo.yml")
            #expect((waiting["summary"] as? String)?.contains("`orchestrate approve pipelines/demo.yml`") == true)
            let answered = try #require(generic.last)
            #expect(
                answered["by"] as? String == "alice"
                    && answered["answer"] as? String == "approved (orchestrate approve)")
            let slack = try #require(received.first { $0.path == "/slack" }?.json)
            #expect(
                (slack["text"] as? String)?.contains("waits for confirm-traffic-increase more before step 2") == true)
            #expect(received.filter { $0.path == "/slack" }.count == 1, "slack chose gate_waiting only")
            #expect(warnings.lines.isEmpty, "\(warnings.lines)")
        }
    }

    @Test func aReceiverThatIsDownIsRetriedThenWarnedAboutWithoutItsURL() async throws {
        let port = try await WebhookReceiver.with { $0.port }  // closed again: nothing listens there
        let warnings = LineCollector()
        let url = "http://127.0.0.1:\(port)/hooks/T0KEN-s3cr3t-path"
        let (outbox, notifier) = Self.notifier(
            [.init(name: "down", format: .json, url: url)], retries: 2, warnings: warnings)
        let clock = ContinuousClock()
        var observed = Duration.zero
        try await outbox.delivering {
            let start = clock.now
            notifier.observe(
                RunEvent(releaseID: "rel-1", at: Date(), kind: .promoted(color: "green", modelVersion: "v1")))
            observed = clock.now - start
        }
        // Bounds far from the receiver's delays, not speed measurements (the machine may be loaded).
        #expect(observed < .seconds(1), "observing never waits for the receiver")
        // On a loaded machine the run's flush limit may end the retries before the third attempt.
        let lines = warnings.lines
        #expect(!lines.isEmpty, "a failed delivery is a warning")
        #expect(
            lines.contains {
                $0.contains("notify down: promoted not delivered after 3 attempt(s)") || $0.contains("still unsent")
            }, "\(lines)")
        #expect(!lines.contains { $0.contains("T0KEN") }, "\(lines)")
    }

    @Test func aReceiverThatStallsHoldsTheEndOfTheRunAtMostTheFlushLimit() async throws {
        try await WebhookReceiver.with(.stall(seconds: 60)) { receiver in
            let warnings = LineCollector()
            // A timeout longer than the flush limit: only the limit can end the wait.
            let spec = NotifySpec(
                timeout: .seconds(30), retries: 0, webhooks: [.init(name: "slow", format: .json, url: receiver.url)])
            let slowOutbox = Outbox(
                destinations: WebhookNotifier.destinations(spec), redaction: .none, warn: { warnings.append($0) })
            let slowNotifier = WebhookNotifier(
                spec: spec, outbox: slowOutbox, pipeline: "demo", service: "svc", redaction: .none)
            let clock = ContinuousClock()
            let start = clock.now
            var bodyTook = Duration.zero
            try await slowOutbox.delivering {
                for _ in 0..<5 {
                    slowNotifier.observe(
                        RunEvent(releaseID: "rel-1", at: Date(), kind: .promoted(color: "green", modelVersion: "v1")))
                }
                bodyTook = clock.now - start
            }
            let total = clock.now - start
            // The receiver stalls 60 s and the timeout is 30 s: only the flush limit ends this sooner.
            #expect(bodyTook < .seconds(1), "observing never waits for the receiver")
            #expect(total >= Outbox.flushLimit && total < Outbox.flushLimit + .seconds(20), "\(total)")
            #expect(receiver.requests.count == 1, "the first request is stalled; the rest waited")
            #expect(
                warnings.lines.contains {
                    $0.contains("5 request(s) still unsent 5.0 seconds after the run ended: given up")
                }, "\(warnings.lines)")
        }
    }

    @Test func aFullQueueDropsAndWarnsOnce() async throws {
        try await WebhookReceiver.with(.stall(seconds: 60)) { receiver in
            let warnings = LineCollector()
            var destination = Outbox.Destination(name: "notify slow", timeout: .seconds(30), retries: 0)
            destination.capacity = 2
            let outbox = Outbox(destinations: [destination], redaction: .none, warn: { warnings.append($0) })
            let request = Outbox.Request(
                method: "POST", url: receiver.url, headers: [], body: Data("{}".utf8), what: "promoted")
            try await outbox.delivering {
                for _ in 0..<10 { outbox.send(request, to: "notify slow") }
            }
            #expect(
                warnings.lines.filter { $0.contains("more than 2 requests waiting") }.count == 1, "\(warnings.lines)")
        }
    }

    @Test func theMetricsAreTheTextFormatWithEveryFamily() {
        let outbox = Outbox(destinations: [], redaction: .none, warn: { _ in })
        let pusher = MetricsPusher(
            spec: MetricsSpec(pushgateway: "http://127.0.0.1:1"), outbox: outbox, service: "svc",
            colors: ["blue", "green"],
            gates: [
                PromQLGate(
                    name: "error-rate", query: "q", min: nil, max: 0.05, interval: .seconds(1), count: 1,
                    initialDelay: .seconds(0), failureLimit: 0, consecutiveErrorLimit: 0, onNoData: .fail)
            ],
            records: [], live: LiveRelease(color: "blue", releaseID: "rel-0", modelSHA256: "0", modelVersion: "v0"))
        var snapshot = MetricsPusher.Snapshot()
        snapshot.phase = "shifting"
        snapshot.weights = ["blue": 75, "green": 25]
        snapshot.target = "green"
        snapshot.gates = ["error-rate": Self.failedGate]
        snapshot.tally = ["release": ["succeeded": 3, "rolled_back": 1]]
        let text = pusher.render(snapshot)
        for line in [
            "orchestrate_rollout_weight_percent{color=\"blue\"} 75",
            "orchestrate_rollout_weight_percent{color=\"green\"} 25",
            "orchestrate_rollout_phase{phase=\"shifting\"} 1", "orchestrate_rollout_phase{phase=\"idle\"} 0",
            "orchestrate_gate_value{gate=\"error-rate\",color=\"green\"} 0.31",
            "orchestrate_gate_passed{gate=\"error-rate\"} 0",
            "orchestrate_gate_bound{gate=\"error-rate\",bound=\"max\"} 0.05",
            "orchestrate_releases_total{action=\"release\",outcome=\"rolled_back\"} 1",
            "# TYPE orchestrate_releases_total counter",
        ] {
            #expect(text.contains(line + "\n"), "\(line) in\n\(text)")
        }
    }
}

extension NotifyTests {
    /// The dashboard's controller panels and annotations only use series the controller pushes.
    @Test func theDashboardUsesOnlyMetricsTheControllerPushes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dashboard = try String(
            contentsOf: root.appendingPathComponent("monitoring/grafana/dashboards/recommender.json"), encoding: .utf8)
        let outbox = Outbox(destinations: [], redaction: .none, warn: { _ in })
        let pusher = MetricsPusher(
            spec: MetricsSpec(pushgateway: "http://127.0.0.1:1"), outbox: outbox, service: "svc", colors: ["blue"],
            gates: [], records: [], live: nil)
        var snapshot = MetricsPusher.Snapshot()
        snapshot.release = "rel-1"
        snapshot.startedAt = Date()
        let pushed = pusher.render(snapshot)
        let used = Set(dashboard.matches(of: /orchestrate_[a-z_]+/).map { String($0.output) })
        #expect(used.count >= 6, "\(used)")
        for metric in used {
            #expect(pushed.contains("# TYPE \(metric) "), "\(metric) is not pushed by the controller")
        }
    }
}

extension NotifyTests {
    @Test func aRecoveredRunIsToldWithItsOutcome() async throws {
        try await WebhookReceiver.with { receiver in
            try await withTemporaryDirectory { folder in
                try write(
                    Self.base
                        + "history: h.jsonl\nnotify:\n  webhooks:\n    - {name: audit, url: \"${HOOK_URL}\", events: [recovered]}\n",
                    to: folder + "/p.yml")
                let pipeline = try PipelineLoader(environment: ["HOOK_URL": receiver.url + "/hook"]).load(
                    folder + "/p.yml")
                let controller = ReleaseController(pipeline: pipeline)
                let gone = try ChildProcess.spawn("/bin/true", [])
                _ = await gone.wait()
                try FileManager.default.createDirectory(
                    atPath: controller.store.folder, withIntermediateDirectories: true)
                try controller.store.saveRun(
                    RunState(releaseID: "rel-killed", pid: gone.pid, startedOn: Date(), phase: .stages))
                let record = try #require(try await controller.recover())
                #expect(record.outcome == .interrupted)
                let told = try #require(receiver.requests.first?.json)
                #expect(
                    told["event"] as? String == "recovered" && told["release"] as? String == "rel-killed", "\(told)")
                #expect(told["outcome"] as? String == "interrupted")
                #expect(receiver.requests.count == 1, "only the chosen event")
            }
        }
    }
}
