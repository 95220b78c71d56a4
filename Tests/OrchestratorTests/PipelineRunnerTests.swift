import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import RecEngine
import RecEngineContract
import StrictYAML
import Testing

@Suite struct ReleaseControllerTests {
    /// A pipeline of built-ins over generated ratings, plus a command stage.
    static func pipelineText(gate: String = "rmse: {max: 3}", extraStage: String = "") -> String {
        """
        version: 1
        name: unit
        history: releases/history.jsonl
        stages:
          - name: ingest
            uses: ingest
            with: {source: raw.csv, format: ratings, output: data/ratings.csv}
          - name: split
            uses: split
            with: {ratings: data/ratings.csv, train: data/train.csv, test: data/test.csv}
          - name: train
            uses: train
            with: {ratings: data/train.csv, model: models/m, factors: 4, epochs: 5}
          - name: evaluate
            uses: evaluate
            with: {model: models/m, ratings: data/test.csv}
            gate:
              \(gate)
        \(extraStage)
        """
    }

    @Test func anALSTrainStageIsGatedOnRankingAndReportsNoRatingError() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            let text = Self.pipelineText(gate: "{ndcg_at_k: {min: 0}, rmse: {max: 5}}")
                .replacingOccurrences(of: "factors: 4, epochs: 5}", with: "algorithm: als, factors: 4, epochs: 5}")
            try write(text, to: folder + "/p.yml")
            let (run, _) = try await runPipeline(folder + "/p.yml")
            let record = try #require(run.record)
            #expect(record.stages[2].argv?.contains("als") == true)
            #expect(record.stages[2].argv?.contains("--lr") == false, "SVD's learning rate is not passed to ALS")
            #expect(
                record.stages[3].gates.map(\.passed) == [true, false], "an ALS model ranks: it reports no RMSE to gate")
            #expect(record.outcome == .failed)
            #expect(record.stages[3].error == "gate rmse: the stage reported no such metric")
        }
    }

    @Test func runsBuiltinsRecordsProvenanceAndCachesUnchangedStages() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            try write(Self.pipelineText(), to: folder + "/p.yml")
            let (first, progress) = try await runPipeline(folder + "/p.yml")
            let record = try #require(first.record)
            #expect(record.outcome == .succeeded)
            #expect(first.exitCode == 0)
            #expect(record.stages.map(\.status) == [.succeeded, .succeeded, .succeeded, .succeeded])
            #expect(record.stages[0].metrics["ratings"] == 720)
            #expect(record.stages[3].metrics["rmse"] != nil)
            #expect(record.stages[3].gates.first?.passed == true)
            #expect(record.stages[3].metrics["ndcg_at_k"] != nil)
            #expect(record.stages[3].rankingProtocol?.k == 10, "the ranking protocol is recorded with the metrics")
            #expect(record.stages[3].rankingProtocol?.testSHA256 == record.stages[1].outputs.last?.sha256)
            let model = try #require(record.stages[2].outputs.first)
            #expect(model.path == folder + "/models/m" && model.kind == "directory" && model.sha256?.count == 64)
            #expect(
                record.stages[1].inputs.first?.sha256 == record.stages[0].outputs.first?.sha256,
                "outputs chain into inputs")
            #expect(record.pipeline.sha256.count == 64)
            #expect(record.previousSHA256 == nil)
            #expect(progress.contains { $0.contains("[3/4] train: done") })

            // Nothing changed: every stage is reused.
            let (second, secondProgress) = try await runPipeline(folder + "/p.yml")
            #expect(second.record?.stages.map(\.status) == [.cached, .cached, .cached, .cached])
            #expect(second.record?.stages[3].metrics == record.stages[3].metrics)
            #expect(
                second.record?.stages[3].rankingProtocol == record.stages[3].rankingProtocol,
                "a reused stage keeps how it measured")
            #expect(
                secondProgress.contains {
                    $0.contains("cached (inputs and parameters unchanged since \(record.releaseID)")
                })

            // A changed input re-runs its stage; identical outputs let later stages stay cached.
            try write(read(folder + "/raw.csv") + "\n", to: folder + "/raw.csv")
            let (third, _) = try await runPipeline(folder + "/p.yml")
            #expect(third.record?.stages.map(\.status) == [.succeeded, .cached, .cached, .cached])

            // A damaged output re-runs the stage that made it.
            try write("{}", to: folder + "/models/m/manifest.json")
            let (fourth, _) = try await runPipeline(folder + "/p.yml")
            #expect(fourth.record?.stages.map(\.status) == [.cached, .cached, .succeeded, .succeeded])

            // --force runs everything.
            let (fifth, _) = try await runPipeline(folder + "/p.yml", options: RunOptions(force: true))
            #expect(fifth.record?.stages.map(\.status) == [.succeeded, .succeeded, .succeeded, .succeeded])

            let history = ReleaseHistory(path: folder + "/releases/history.jsonl")
            #expect(try history.records().count == 5)
            #expect(try history.verify().isEmpty)
        }
    }

    @Test func aFailingGateStopsThePipelineWithTheNumbers() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            try write(
                Self.pipelineText(
                    gate: "rmse: {max: 0.01}", extraStage: "  - name: after\n    run: [touch, after-ran]\n"),
                to: folder + "/p.yml")
            let (result, progress) = try await runPipeline(folder + "/p.yml")
            let record = try #require(result.record)
            #expect(result.exitCode == 1)
            #expect(record.outcome == .failed)
            #expect(record.stages.map(\.status) == [.succeeded, .succeeded, .succeeded, .failed, .notRun])
            let verdict = try #require(record.stages[3].gates.first)
            #expect(verdict.passed == false && verdict.condition == "<= 0.01" && (verdict.value ?? 0) > 0.01)
            #expect(record.failure?.contains("gate rmse <= 0.01 failed with") == true)
            #expect(progress.contains { $0.contains("gate rmse <= 0.01") && $0.contains("FAILED") })
            #expect(!FileManager.default.fileExists(atPath: folder + "/after-ran"))
            // A failed run is never a cache source.
            let (again, _) = try await runPipeline(folder + "/p.yml", options: RunOptions(skip: ["after"]))
            #expect(again.record?.stages.prefix(3).map(\.status) == [.succeeded, .succeeded, .succeeded])
        }
    }

    static func commandPipeline(_ stage: String) -> String {
        "version: 1\nname: cmd\nhistory: h.jsonl\nstages:\n\(stage)"
    }

    @Test func commandStagesRunWithoutAShellAndReportMetrics() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                Self.commandPipeline(
                    """
                      - name: report
                        run: [/bin/sh, -c, 'echo "{\\"loss\\": 0.25, \\"note\\": \\"x\\"}" > m.json; echo "$GREETING; $1" ', sh, "a b; rm -rf /"]
                        env: {GREETING: hello}
                        metrics: m.json
                        outputs: [m.json]
                        gate:
                          loss: {max: 0.5}
                    """), to: folder + "/p.yml")
            let (result, _) = try await runPipeline(folder + "/p.yml")
            let stage = try #require(result.record?.stages.first)
            #expect(stage.status == .succeeded)
            #expect(stage.exitStatus == 0)
            #expect(stage.metrics == ["loss": 0.25])
            #expect(stage.gates.first?.passed == true)
            let log = try #require(stage.log)
            #expect(read(log).contains("hello; a b; rm -rf /"), "arguments pass through verbatim")
        }
    }

    @Test func failedCommandsAreRetriedAndReportTheirOutput() async throws {
        try await withTemporaryDirectory { folder in
            // Fails on the first two attempts, succeeds on the third.
            try write(
                Self.commandPipeline(
                    """
                      - name: flaky
                        run: [/bin/sh, -c, 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "attempt $n"; [ $n -ge 3 ]']
                        retries: 2
                    """), to: folder + "/p.yml")
            let (result, progress) = try await runPipeline(folder + "/p.yml")
            #expect(result.record?.stages.first?.status == .succeeded)
            #expect(result.record?.stages.first?.attempts == 3)
            #expect(progress.filter { $0.contains("retrying") }.count == 2)

            try write(
                Self.commandPipeline(
                    "  - name: broken\n    run: [/bin/sh, -c, 'echo something went wrong >&2; exit 7']\n    retries: 1\n"
                ), to: folder + "/p.yml")
            let (failed, _) = try await runPipeline(folder + "/p.yml")
            let stage = try #require(failed.record?.stages.first)
            #expect(stage.status == .failed && stage.attempts == 2 && stage.exitStatus == 7)
            #expect(stage.error?.contains("exited with status 7") == true)
            #expect(stage.error?.contains("something went wrong") == true)
        }
    }

    @Test func aTimeoutStopsTheCommandAndItsChildren() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                Self.commandPipeline(
                    "  - name: slow\n    run: [/bin/sh, -c, 'sleep 120 & echo $! > child.pid; wait']\n    timeout: 500ms\n"
                ),
                to: folder + "/p.yml")
            let clock = ContinuousClock()
            let start = clock.now
            let (result, _) = try await runPipeline(folder + "/p.yml")
            // Far less than the command's 120 s (on a loaded CI machine a run takes seconds).
            #expect(clock.now - start < .seconds(60))
            let stage = try #require(result.record?.stages.first)
            #expect(stage.status == .failed)
            #expect(stage.error?.contains("timed out after 500ms") == true)
            // The grandchild was in the stage's process group and is gone too.
            let pid = try #require(Int32(read(folder + "/child.pid").trimmingCharacters(in: .whitespacesAndNewlines)))
            try await Task.sleep(for: .milliseconds(300))
            // Gone, or a zombie waiting for a reaper (PID 1 in a container may never reap it).
            let stat = read("/proc/\(pid)/stat")
            #expect(stat.isEmpty || stat.contains(") Z "), "\(stat)")
        }
    }

    @Test func aMissingMetricFailsItsGate() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                Self.commandPipeline(
                    "  - name: s\n    run: [/bin/sh, -c, 'echo {} > m.json']\n    metrics: m.json\n    gate:\n      loss: {max: 1}\n"
                ),
                to: folder + "/p.yml")
            let (result, _) = try await runPipeline(folder + "/p.yml")
            #expect(result.record?.stages.first?.error == "gate loss: the stage reported no such metric")
        }
    }

    @Test func skipAndUnknownSkip() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                Self.commandPipeline("  - name: a\n    run: [touch, a]\n  - name: b\n    run: [touch, b]\n"),
                to: folder + "/p.yml")
            let (result, _) = try await runPipeline(folder + "/p.yml", options: RunOptions(skip: ["a"]))
            #expect(result.record?.stages.map(\.status) == [.skipped, .succeeded])
            #expect(!FileManager.default.fileExists(atPath: folder + "/a"))
            await #expect(throws: OrchestratorError.self) {
                try await runPipeline(folder + "/p.yml", options: RunOptions(skip: ["c"]))
            }
        }
    }

    /// A dry run leaves every file byte-for-byte unchanged and starts no process.
    @Test func dryRunChangesNothing() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            try write(
                Self.pipelineText(extraStage: "  - name: marker\n    run: [touch, marker]\n"), to: folder + "/p.yml")
            _ = try await runPipeline(folder + "/p.yml")
            try FileManager.default.removeItem(atPath: folder + "/marker")
            try write(read(folder + "/raw.csv") + "\n", to: folder + "/raw.csv")
            let before = try snapshot(folder)
            let (result, progress) = try await runPipeline(folder + "/p.yml", options: RunOptions(dryRun: true))
            #expect(result.record == nil)
            #expect(progress.isEmpty)
            #expect(try snapshot(folder) == before)
            #expect(!FileManager.default.fileExists(atPath: folder + "/marker"))
            #expect(
                result.plan.stages.map(\.action) == [.run, .runOrReuse, .runOrReuse, .runOrReuse, .run],
                "an earlier stage reruns: the later ones are decided when it has run")
            #expect(result.plan.stages[1].reason.contains("written by ingest"))
        }
    }

    @Test func recordedDryRunAppendsAPlannedRecord() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.commandPipeline("  - name: a\n    run: [touch, a]\n"), to: folder + "/p.yml")
            let (result, _) = try await runPipeline(
                folder + "/p.yml", options: RunOptions(dryRun: true, recordDryRun: true))
            #expect(result.record?.outcome == .planned)
            #expect(result.record?.dryRun == true)
            #expect(!FileManager.default.fileExists(atPath: folder + "/a"))
            #expect(try ReleaseHistory(path: folder + "/h.jsonl").records().count == 1)
        }
    }

    @Test func aSecondRunWaitsForNoOneAndExitsLocked() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.commandPipeline("  - name: a\n    run: [touch, a]\n"), to: folder + "/p.yml")
            let lock = try RunLock(
                historyPath: folder + "/h.jsonl",
                holder: .init(pid: 4242, user: "cron", host: "box", since: Date(), releaseID: "rel-x", command: []))
            let error = await #expect(throws: OrchestratorError.self) { try await runPipeline(folder + "/p.yml") }
            #expect(error?.code == .locked)
            #expect(error?.code.exitCode == 3)
            #expect(error?.message.contains("pid 4242 (cron@box)") == true)
            #expect(error?.message.contains("rel-x") == true)
            #expect(!FileManager.default.fileExists(atPath: folder + "/a"))
            lock.release()
            let (result, _) = try await runPipeline(folder + "/p.yml")
            #expect(result.record?.outcome == .succeeded)
        }
    }

    func snapshot(_ folder: String) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(atPath: folder)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isDirectory)
            result[relative] =
                isDirectory.boolValue ? Data() : FileManager.default.contents(atPath: folder + "/" + relative)
        }
        return result
    }
}
