import Foundation
import Orchestrator
import Provenance
import TestSupport
import Testing
import Traffic

/// The release policy through the command line, with real releases: a model marked bad is
/// refused at rollback and at deploy, a pin refuses every run until unpinned, a run outside the
/// release windows is refused; each refusal exits 7 and leaves the live release serving.
@Suite(.serialized) struct ReleasePolicyIntegrationTests {
    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }

    @Test func badMarksPinsAndWindowsRefuseWithExitSevenAndChangeNothing() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run(RunOptions(noStagedShift: true))
            let second = try await playground.run(
                RunOptions(force: true, noStagedShift: true), environment: ["EPOCHS": "12"])
            #expect(first.outcome == .succeeded && second.outcome == .succeeded, "\(second.failure ?? "")")
            let firstModel = try #require(first.deployment?.modelSHA256)
            let secondModel = try #require(second.deployment?.modelSHA256)
            #expect(firstModel != secondModel)
            let pipeline = playground.pipelinePath
            func live() throws -> String? { try StateStore(folder: playground.statePath).live()?.releaseID }

            // Marked bad: a rollback to it is refused, and nothing changes.
            let mark = try await orchestrate([
                "mark-bad", String(firstModel.prefix(12)), "--reason", "stale id mapping", "--pipeline", pipeline,
            ])
            #expect(mark.status == 0, "\(mark.stderr)")
            let rollback = try await orchestrate(["rollback", pipeline])
            #expect(rollback.status == 7, "\(rollback.stderr)")
            #expect(rollback.stderr.contains("is marked bad") && rollback.stderr.contains("stale id mapping"))
            #expect(try live() == second.releaseID)
            let status = try await orchestrate(["status", pipeline])
            #expect(status.stdout.contains("marked bad: model \(firstModel.prefix(12))"), "\(status.stdout)")
            let history = try await orchestrate(["history", "--pipeline", pipeline])
            #expect(history.stdout.contains("mark_bad") && history.stdout.contains("stale id mapping"))

            // The same model trained again is not deployed.
            let retrained = try await orchestrate(["run", pipeline, "--force", "--no-staged-shift"])
            #expect(retrained.status == 7, "\(retrained.stderr)")
            #expect(retrained.stderr.contains("is marked bad"), "\(retrained.stderr)")
            #expect(try live() == second.releaseID)
            let refused = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(refused.refusedByPolicy != nil && refused.deployment == nil && refused.model?.sha256 == firstModel)

            // Pinned: every run is refused before its stages, the dry run says so.
            let pin = try await orchestrate(["pin", "--reason", "holiday freeze", "--pipeline", pipeline])
            #expect(pin.status == 0, "\(pin.stderr)")
            let dryRun = try await orchestrate(["run", pipeline, "--dry-run"])
            #expect(dryRun.status == 7, "\(dryRun.stderr)")
            #expect(dryRun.stdout.contains("pinned: release \(second.releaseID) (holiday freeze)"), "\(dryRun.stdout)")
            let pinned = try await orchestrate(["run", pipeline, "--force", "--no-staged-shift"])
            #expect(pinned.status == 7 && pinned.stderr.contains("is pinned"), "\(pinned.stderr)")
            let pinnedRecord = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(pinnedRecord.stages.allSatisfy { $0.status == .notRun }, "refused before the stages")
            #expect(try live() == second.releaseID)
            #expect(try await orchestrate(["unpin", "--pipeline", pipeline]).status == 0)
            #expect(try await orchestrate(["unpin", "--pipeline", pipeline]).status == 2, "nothing left to unpin")

            // Outside every window: a one-minute window twelve hours from now.
            let now = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
            let start = ((now.hour ?? 0) * 60 + (now.minute ?? 0) + 720) % 1439
            let hours = String(
                format: "%02d:%02d-%02d:%02d", start / 60, start % 60, (start + 1) / 60, (start + 1) % 60)
            try playground.writePipeline(extra: "policy:\n  windows:\n    - {hours: \"\(hours)\", timezone: UTC}\n")
            let closed = try await orchestrate(["run", pipeline, "--dry-run"])
            #expect(closed.status == 7, "\(closed.stderr)")
            #expect(closed.stdout.contains("release windows every day \(hours) UTC: closed now; the next opens"))
            let outside = try await orchestrate(["run", pipeline, "--force", "--no-staged-shift"])
            #expect(outside.status == 7, "\(outside.stderr)")
            #expect(outside.stderr.contains("outside the release windows") && outside.stderr.contains("(in 1"))
            #expect(try live() == second.releaseID)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [second.deployment?.color ?? ""])
        }
    }

    /// A gate relative to history: a training whose error rises more than 5 % above the median of
    /// the last promoted releases fails its gate, and the plan shows the values it compares with.
    @Test func aStageGateRelativeToTheLastReleasesFailsAWorseModel() async throws {
        try await Playground.with { playground in
            try playground.writeRatings()
            try """
            version: 1
            name: offline
            history: releases/history.jsonl
            stages:
              - name: train
                uses: train
                with: {ratings: ratings.csv, model: models/m, factors: 8, epochs: "${EPOCHS:-10}"}
                gate:
                  train_rmse: {history: {last: 5, maxRise: 0.05}}

            """.write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            let first = try await orchestrate(["run", playground.pipelinePath])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stderr.contains("none recorded it yet"), "the first release has nothing to compare with")
            let second = try await orchestrate([
                "run", playground.pipelinePath, "--force", "--set", "stages.train.with.seed=3",
            ])
            #expect(second.status == 0, "\(second.stderr)")
            let records = try ReleaseHistory(path: playground.historyPath).records()
            let values = records.compactMap { $0.stages.first?.metrics["train_rmse"] }
            #expect(values.count == 2)

            let plan = try await orchestrate([
                "run", playground.pipelinePath, "--dry-run", "--set", "stages.train.with.epochs=1",
            ])
            #expect(plan.status == 0, "\(plan.stderr)")
            #expect(plan.stdout.contains("gate: train_rmse <= "), "\(plan.stdout)")
            #expect(plan.stdout.contains("not above the median by more than 5 % of the last 2 promoted releases"))

            let worse = try await orchestrate(["run", playground.pipelinePath, "--set", "stages.train.with.epochs=1"])
            #expect(worse.status == 1, "\(worse.stderr)")
            #expect(
                worse.stderr.contains("gate train_rmse <= ") && worse.stderr.contains("failed with"), "\(worse.stderr)")
            let failed = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(failed.outcome == .failed)
            let verdict = try #require(failed.stages.first?.gates.first)
            #expect(!verdict.passed && (verdict.value ?? 0) > (values.sorted()[0] + values.sorted()[1]) / 2 * 1.05)
        }
    }
}
