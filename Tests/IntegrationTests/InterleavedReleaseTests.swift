import Foundation
import Orchestrator
import Provenance
import RecEngine
import TestSupport
import Testing
import Traffic

/// Releases decided by interleaving, for real: Prometheus, nginx interleaving half of the users,
/// two `recengine serve` colours, the simulator replaying held-out ratings. The first step is the
/// interleaving step (0 %: no user sees the new model alone), judged on the interleaved users'
/// preferences only. `maxWait` is generous: beside the other suites on a loaded 2-core machine the
/// colours answer slowly, the balancer falls back to the live list for more requests and fewer
/// users are interleaved (the known-worse step was once undecided after 120 s); a decided step
/// ends at once.
@Suite(.serialized) struct InterleavedReleaseTests {
    static func pipeline(_ playground: Playground, seed: Int = 0, args: String = "[]") -> String {
        """
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
          steps: [0, 100]
          interleave: {share: 50}
          wait: 4s
          stopOld: true
          drain: 1s
        analysis:
          prometheus: http://127.0.0.1:\(playground.prometheusPort)
          judge:
            interval: 1s
            maxWait: 240s
            metrics:
              - name: preference
                interleaving: {}
                bad: decrease
                effect: {absolute: 0.1}
                critical: true
        hooks:
          duringStep:
            - [\(Playground.recengine), simulate, --ratings, data/test.csv, --url, "http://127.0.0.1:\(playground.nginxPort)", --rate, "100"]
        """
    }

    func firstRelease(_ playground: Playground) async throws -> String {
        try JudgeIntegrationTests.writeData(in: playground.folder)
        try Self.pipeline(playground).write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
        let first = try await playground.run()
        #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
        return try #require(first.deployment?.color)
    }

    @Test func anAAInterleavedReleaseIsPromoted() async throws {
        try await Playground.with { playground in
            let live = try await firstRelease(playground)
            // The same model but for its initial factors: equal quality.
            try Self.pipeline(playground, seed: 7).write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let second = try await playground.run(RunOptions(force: true))
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let step = try #require(second.rollout?.steps.first)
            #expect(step.weight == 0, "the interleaving step")
            #expect(step.judgeDecision == .pass, "\(step.judgeRule ?? "")")
            let final = try #require(step.judge?.last?.metrics.first)
            #expect(final.metric == "preference" && final.classification == .pass, "\(final.rule)")
            let comparison = try #require(final.comparisons.first)
            #expect(comparison.newTrials >= 30 && comparison.lower > -0.1, "\(final.rule)")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) != [live], "promoted")

            let explain = try await runCommand(
                Playground.orchestrate, ["explain", second.releaseID, "--pipeline", playground.pipelinePath])
            #expect(explain.status == 0, "\(explain.stderr)")
            #expect(
                explain.stdout.contains("preference*") && explain.stdout.contains("interleaved users preferring new"),
                "\(explain.stdout)")
        }
    }

    @Test func aKnownWorseColourLosesTheInterleavingAndIsRolledBack() async throws {
        try await Playground.with { playground in
            let live = try await firstRelease(playground)
            // Most of every answer of the new colour replaced by random movies: a fault named as such.
            try Self.pipeline(playground, seed: 7, args: #"[--fault-random-share, "0.8"]"#).write(
                toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let second = try await playground.run(RunOptions(force: true))
            // Every look of every step, should the judge decide otherwise.
            let looks = (second.rollout?.steps ?? []).map { step in
                "step \(step.weight) %: "
                    + (step.judge ?? []).map { $0.metrics.map(\.rule).joined(separator: "; ") }
                    .joined(separator: " | ")
            }
            print("known-worse interleaved release: \(second.outcome), \(looks.map { String($0.suffix(400)) })")
            #expect(second.outcome == .rolledBack, "\(second.failure ?? "") \(looks)")
            #expect(
                second.rollout?.steps.count == 1 && second.rollout?.steps.first?.weight == 0, "at the interleaving step"
            )
            #expect(second.failure?.contains("critical metric preference is Low") == true, "\(second.failure ?? "")")
            let comparison = try #require(second.rollout?.steps.first?.judge?.last?.metrics.first?.comparisons.first)
            #expect(comparison.liveSuccesses > comparison.newSuccesses, "more users preferred the live colour")
            let split = try #require(await playground.nginx.currentSplit())
            #expect(
                split.backends.map(\.color) == [live] && split.interleave == nil,
                "all traffic back on \(live), nothing interleaved")
        }
    }
}
