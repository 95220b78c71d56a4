import Foundation
import Orchestrator
import Provenance
import RecEngine
import TestSupport
import Testing
import Traffic

/// The judge against the live colour, for real: Prometheus, nginx, two `recengine serve`
/// colours, the traffic simulator replaying held-out ratings neither colour trained on.
@Suite(.serialized) struct JudgeIntegrationTests {
    static func pipeline(
        _ playground: Playground, seed: Int = 0, args: String = "[]", metrics: String? = nil, maxWait: String = "60s"
    ) -> String {
        let standard = """
                  - name: engagement
                    proportion:
                      successes: sum by (user_bucket) (recengine_conversions_total{color="{{color}}"})
                      trials: sum by (user_bucket) (recengine_recommendations_served_total{color="{{color}}"})
                      units: user_bucket
                    bad: decrease
                    effect: 0.25
                    critical: true
                  - name: errors
                    proportion:
                      successes: sum(recengine_http_requests_total{color="{{color}}",status=~"5.."})
                      trials: sum(recengine_http_requests_total{color="{{color}}"})
                    bad: increase
                    effect: {absolute: 0.02}
                    critical: true
                  - name: latency
                    histogram: sum by (le) (recengine_http_request_duration_seconds_bucket{color="{{color}}",route="/recommend/{userId}"})
                    quantiles: [0.5, 0.95]
                    bad: increase
                    effect: 1.0
                    onNoData: ignore
            """
        return """
            version: 1
            name: svc
            history: releases/history.jsonl
            stages:
              - name: train
                uses: train
                with: {ratings: data/train.csv, model: models/m, factors: 8, epochs: 40, lr: 0.01, seed: \(seed)}
            deploy:
              runtime: process
              service: svc
              args: \(args)
              health: {path: /health, timeout: 20s}
            traffic:
              nginx: {config: releases/state/svc/nginx.conf, listen: \(playground.nginxPort)}
              steps: [25, 100]
              wait: 4s
              stopOld: true
              drain: 1s
            analysis:
              prometheus: http://127.0.0.1:\(playground.prometheusPort)
              judge:
                interval: 1s
                maxWait: \(maxWait)
                metrics:
            \(metrics ?? standard)
            hooks:
              duringStep:
                - [\(Playground.recengine), simulate, --ratings, data/test.csv, --url, "http://127.0.0.1:\(playground.nginxPort)", --rate, "300"]
            """
    }

    /// Ratings of 5,000 users with a low-rank structure, a fifth of them held out (the replayed
    /// future). A sticky split compares groups of users: with a few hundred, their differences
    /// swamp any model's and the judge cannot decide.
    static func writeData(in folder: String) throws {
        var generator = SeededGenerator(seed: 21)
        func vector() -> [Double] { (0..<3).map { _ in generator.nextNormal(mean: 0, standardDeviation: 1) } }
        let items = (0..<200).map { _ in vector() }
        var train = "user_id,movie_id,rating\n"
        var test = "user_id,movie_id,rating\n"
        for u in 0..<5000 {
            let user = vector()
            var chosen = Set<Int>()
            while chosen.count < 20 { chosen.insert(generator.nextIndex(below: items.count)) }
            for (index, i) in chosen.sorted().enumerated() {
                let rating = Int(min(5, max(1, (3 + zip(user, items[i]).map(*).reduce(0, +)).rounded())))
                if index % 5 == 0 { test += "u\(u),m\(i),\(rating)\n" } else { train += "u\(u),m\(i),\(rating)\n" }
            }
        }
        try write(train, to: folder + "/data/train.csv")
        try write(test, to: folder + "/data/test.csv")
    }

    func firstRelease(_ playground: Playground) async throws -> String {
        try Self.writeData(in: playground.folder)
        try Self.pipeline(playground).write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
        let first = try await playground.run()
        #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
        return try #require(first.deployment?.color)
    }

    @Test func anAAReleaseIsPromotedByTheJudge() async throws {
        try await Playground.with { playground in
            _ = try await firstRelease(playground)
            // The same model but for its initial factors: equal quality.
            try Self.pipeline(playground, seed: 7).write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let second = try await playground.run(RunOptions(force: true))
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let step = try #require(second.rollout?.steps.first)
            #expect(step.judgeDecision == .pass, "\(step.judgeRule ?? "")")
            let final = try #require(step.judge?.last)
            #expect(final.metrics.first { $0.metric == "engagement" }?.classification == .pass)
            let engagement = try #require(final.metrics.first { $0.metric == "engagement" }?.comparisons.first)
            #expect(
                engagement.newTrials > 0 && engagement.liveTrials > engagement.newTrials,
                "both colours measured over the same window, 25/75")
            #expect(engagement.lower <= engagement.difference && engagement.difference <= engagement.upper)

            let explain = try await runCommand(
                Playground.orchestrate, ["explain", second.releaseID, "--pipeline", playground.pipelinePath])
            #expect(explain.status == 0, "\(explain.stderr)")
            #expect(
                explain.stdout.contains("judge:") && explain.stdout.contains("engagement*")
                    && explain.stdout.contains("Pass"), "\(explain.stdout)")
        }
    }

    @Test func aKnownWorseCandidateIsRolledBackByTheJudgeAtTheFirstStep() async throws {
        try await Playground.with { playground in
            let live = try await firstRelease(playground)
            // Most of every answer replaced by random movies (about half the engagement): a fault named as such.
            // The step ends once decided (the whole test took 45 s in a passing run); the long deadline
            // is for a loaded machine, whose load generator sends a fraction of the requests
            // (undecided after 60 s at a load average of 15).
            try Self.pipeline(playground, seed: 7, args: #"[--fault-random-share, "0.8"]"#, maxWait: "180s").write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let second = try await playground.run(RunOptions(force: true))
            #expect(second.outcome == .rolledBack, "\(second.failure ?? "")")
            #expect(second.rollout?.steps.count == 1, "at the first step")
            let rules = second.rollout?.steps.first?.judge?.last?.metrics.map(\.rule).joined(separator: "\n") ?? ""
            #expect(
                second.failure?.contains("critical metric engagement is Low") == true,
                "\(second.failure ?? "")\n\(rules)")
            #expect(second.rollout?.steps.first?.judgeDecision == .fail)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
        }
    }

    @Test func aMetricWithNoDataFollowsItsRule() async throws {
        try await Playground.with { playground in
            _ = try await firstRelease(playground)
            let missing = """
                      - name: missing
                        proportion:
                          successes: sum(no_such_metric_total{color="{{color}}"})
                          trials: sum(no_such_metric_total{color="{{color}}"})
                        bad: decrease
                        onNoData: fail
                """
            try Self.pipeline(playground, seed: 7, metrics: missing, maxWait: "6s").write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let failed = try await playground.run(RunOptions(force: true))
            #expect(failed.outcome == .rolledBack)
            #expect(
                failed.failure?.contains("score 0") == true && failed.failure?.contains("fail") == true,
                "NoData counted as not passed, nothing passed: \(failed.failure ?? "")")
            #expect(failed.rollout?.steps.first?.judge?.last?.metrics.first?.classification == .noData)

            let ignored =
                missing.replacingOccurrences(of: "onNoData: fail", with: "onNoData: ignore") + "\n" + """
                          - name: errors
                            proportion:
                              successes: sum(recengine_http_requests_total{color="{{color}}",status=~"5.."})
                              trials: sum(recengine_http_requests_total{color="{{color}}"})
                            bad: increase
                            effect: {absolute: 0.05}
                    """
            try Self.pipeline(playground, seed: 9, metrics: ignored, maxWait: "30s").write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let passed = try await playground.run(RunOptions(force: true))
            #expect(passed.outcome == .succeeded, "NoData ignored, the other metric decides: \(passed.failure ?? "")")
        }
    }
}
