import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import Provenance
import RecEngine
import StrictYAML
import TestSupport
import Testing
import Traffic

/// The engagement gate tells models apart: real Prometheus, nginx, recengine processes and the
/// traffic simulator as the during-step hook.
@Suite(.serialized) struct EngagementTests {
    /// Ratings with a strong low-rank structure, split into training and held-out files, plus a
    /// training file whose ratings are shuffled across rows (a model that learns nothing useful).
    static func writeData(in folder: String) throws {
        var generator = SeededGenerator(seed: 21)
        func vector() -> [Double] { (0..<3).map { _ in generator.nextNormal(mean: 0, standardDeviation: 1) } }
        let users = (0..<300).map { _ in vector() }
        let items = (0..<200).map { _ in vector() }
        var rows: [(String, String, Int)] = []
        for (u, user) in users.enumerated() {
            var chosen = Set<Int>()
            while chosen.count < 40 { chosen.insert(generator.nextIndex(below: items.count)) }
            for i in chosen.sorted() {
                let score = 3 + zip(user, items[i]).map(*).reduce(0, +)
                rows.append(("u\(u)", "m\(i)", Int(min(5, max(1, score.rounded())))))
            }
        }
        var order = Array(rows.indices)
        generator.shuffle(&order)
        let testCount = rows.count / 5
        func csv(_ selected: [(String, String, Int)]) -> String {
            "user_id,movie_id,rating\n" + selected.map { "\($0.0),\($0.1),\($0.2)\n" }.joined()
        }
        let test = order.prefix(testCount).map { rows[$0] }
        let train = order.dropFirst(testCount).map { rows[$0] }
        var shuffledRatings = train.map(\.2)
        generator.shuffle(&shuffledRatings)
        try write(csv(train), to: folder + "/data/train.csv")
        try write(csv(test), to: folder + "/data/test.csv")
        try write(csv(zip(train, shuffledRatings).map { ($0.0.0, $0.0.1, $0.1) }), to: folder + "/data/shuffled.csv")
    }

    /// Half the traffic at 100 requests/s, counted over the new colour's whole life (30 s window),
    /// gives the gates a few hundred requests: the shuffled model's engagement, about 0.3 of the
    /// live one's, cannot reach the 0.6 bound by chance, as it once did with a quarter of 60/s on
    /// a loaded machine.
    static func pipeline(_ playground: Playground) -> String {
        let engagement =
            "sum(rate(recengine_conversions_total{color=\"%@\"}[30s])) / sum(rate(recengine_recommendations_served_total{color=\"%@\"}[30s]))"
        let mine = String(format: engagement, "{{color}}", "{{color}}")
        let live = String(format: engagement, "{{live}}", "{{live}}")
        return """
            version: 1
            name: svc
            history: releases/history.jsonl
            stages:
              - name: train
                uses: train
                with: {ratings: "${TRAIN:-data/train.csv}", model: models/m, factors: 8, epochs: 40, lr: 0.01}
            deploy:
              runtime: process
              service: svc
              health: {path: /health, timeout: 20s}
            traffic:
              nginx: {config: releases/state/svc/nginx.conf, listen: \(playground.nginxPort)}
              steps: [50, 100]
              wait: 6s
              stopOld: true
              drain: 1s
            analysis:
              prometheus: http://127.0.0.1:\(playground.prometheusPort)
              gates:
                - name: engagement
                  query: \(mine)
                  min: 0.003
                  initialDelay: 4s
                  interval: 1s
                  count: 2
                  onNoData: inconclusive
                - name: engagement-vs-live
                  query: (\(mine)) / (\(live))
                  min: 0.6
                  initialDelay: 4s
                  interval: 1s
                  count: 2
                  onNoData: inconclusive
            hooks:
              duringStep:
                - [\(Playground.recengine), simulate, --ratings, data/test.csv, --url, "http://127.0.0.1:\(playground.nginxPort)", --rate, "100"]
            """
    }

    @Test func aGoodModelIsPromotedAndAShuffledOneRolledBackOnEngagement() async throws {
        try await Playground.with { playground in
            try Self.writeData(in: playground.folder)
            try Self.pipeline(playground).write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let good = try await playground.run()
            #expect(good.outcome == .succeeded, "\(good.failure ?? "")")
            let live = try #require(good.deployment?.color)
            #expect(
                good.rollout?.steps.first?.measurements.contains { $0.gate == "engagement" && $0.outcome == "success" }
                    == true)

            let poor = try await playground.run(RunOptions(force: true), environment: ["TRAIN": "data/shuffled.csv"])
            let measured =
                poor.rollout?.steps.flatMap(\.measurements).map {
                    "\($0.gate)=\($0.value.map { "\($0)" } ?? "none") \($0.outcome)"
                } ?? []
            #expect(poor.outcome == .rolledBack, "\(poor.failure ?? ""); measured: \(measured)")
            #expect(poor.rollout?.steps.count == 1, "rolled back at the first step")
            // Either engagement gate may decide first: absolute, or relative to the live colour.
            #expect(
                poor.failure?.hasPrefix("gate engagement") == true, "on engagement, not errors: \(poor.failure ?? "")")
            let failing =
                poor.rollout?.steps.first?.measurements.filter {
                    $0.gate.hasPrefix("engagement") && $0.outcome == "failure"
                } ?? []
            #expect(!failing.isEmpty)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
        }
    }

    @Test func theSimulatorsCountsAgreeWithPrometheus() async throws {
        try await Playground.with { playground in
            try Self.writeData(in: playground.folder)
            try Self.pipeline(playground).write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let release = try await playground.run(RunOptions(noStagedShift: true))
            let color = try #require(release.deployment?.color)
            let prometheus = PrometheusClient(baseURL: "http://127.0.0.1:\(playground.prometheusPort)")
            func total(_ metric: String) async throws -> Double {
                if case .value(let value) = try await prometheus.query("sum(\(metric){color=\"\(color)\"})") {
                    return value
                }
                return 0
            }
            try await Task.sleep(for: .seconds(4))  // the hook's last events are scraped
            let conversionsBefore = try await total("recengine_conversions_total")
            let servedBefore = try await total("recengine_recommendations_served_total")
            let heldOut = try RatingsFile.load(path: playground.folder + "/data/test.csv").ratings
            let simulator = TrafficSimulator(
                heldOut: heldOut,
                configuration: .init(
                    baseURL: "http://127.0.0.1:\(playground.nginxPort)", rate: 50, duration: .seconds(3), count: 20,
                    seed: 9))
            let report = await simulator.run { url, body in
                let response =
                    if let body {
                        try await HTTPClient.post(
                            url, body: body, limit: .forTests, headers: ["Content-Type: application/json"])
                    } else {
                        try await HTTPClient.get(url, limit: .forTests, headers: ["Accept: application/json"])
                    }
                return (response.status, response.body)
            }
            try await Task.sleep(for: .seconds(4))  // two scrapes
            let counts = try #require(report.colors[color])
            #expect(report.errors == 0)
            #expect(counts.conversions > 0)
            #expect(try await total("recengine_conversions_total") - conversionsBefore == Double(counts.conversions))
            #expect(
                try await total("recengine_recommendations_served_total") - servedBefore == Double(counts.recommended))
        }
    }
}
