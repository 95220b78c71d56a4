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
}
