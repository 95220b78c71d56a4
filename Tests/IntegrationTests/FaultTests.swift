import DeploymentRuntimes
import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import OrchestratorSupport
import Provenance
import RecEngine
import StrictYAML
import TestSupport
import Testing
import Traffic

/// The controller on its worst day: unreadable state, signals, kill -9 at every phase, aborts at
/// awkward moments, children that must not outlive it. Real nginx, Prometheus and colours.
@Suite(.serialized) struct FaultTests {
    /// The release before the one under test: all traffic at once, a short hold.
    static let quick = RunOptions(overrides: ["traffic.wait=5s"], noStagedShift: true)

    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }

    /// A during-step hook that writes its pid and then sleeps: a process that must not outlive
    /// the step or the controller.
    func sleeperHook(_ playground: Playground) throws -> String {
        let script = playground.folder + "/sleeper.sh"
        try "#!/bin/sh\necho $$ >> \"\(playground.folder)/sleeper.pids\"\nexec sleep 600\n".write(
            toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        return "hooks:\n  duringStep:\n    - [\(script)]\n"
    }

    func sleeperPIDs(_ playground: Playground) -> [Int32] {
        ((try? String(contentsOfFile: playground.folder + "/sleeper.pids", encoding: .utf8)) ?? "").split(
            separator: "\n"
        ).compactMap { Int32($0) }
    }

    func isAlive(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.contains(") Z ")
    }

    @Test func anUnreadableCurrentJSONStopsTheRunWithoutTouchingTheServingColourAndRepairRestoresIt() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            let split = await playground.nginx.currentSplit()
            // Truncated, as a full disk or a crash of an older writer leaves it.
            let currentPath = playground.statePath + "/current.json"
            let bytes = try #require(FileManager.default.contents(atPath: currentPath))
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: currentPath))

            let error = await #expect(throws: OrchestratorError.self) {
                try await playground.run(RunOptions(force: true))
            }
            #expect(error?.code == .unreadableState)
            #expect(error?.code.exitCode == 2)
            #expect(error?.message.contains(currentPath) == true, "the file is named: \(error?.message ?? "")")
            #expect(error?.hint?.contains("orchestrate repair") == true)
            #expect(await playground.nginx.currentSplit() == split, "traffic untouched")
            #expect(await playground.runtime.instance(of: live) != nil, "the serving colour keeps serving")
            #expect(playground.lastSamples.allSatisfy { $0.status == 200 }, "no failed request")
            let other = live == "blue" ? "green" : "blue"
            #expect(await playground.runtime.instance(of: other) == nil, "nothing was deployed")

            let dryRun = try await orchestrate(["run", playground.pipelinePath, "--dry-run"])
            #expect(dryRun.status == 2, "the dry run stops where the run would: \(dryRun.stderr)")
            let status = try await orchestrate(["status", playground.pipelinePath])
            #expect(status.status == 1)
            #expect(status.stdout.contains("live: UNKNOWN"), "\(status.stdout)")
            #expect(status.stderr.contains("current.json is unreadable"), "\(status.stderr)")

            let repair = try await orchestrate(["repair", playground.pipelinePath])
            #expect(repair.status == 0, "\(repair.stderr)")
            #expect(repair.stdout.contains("done: write"), "\(repair.stdout)")
            let restored = try #require(try StateStore(folder: playground.statePath).live())
            #expect(
                restored.color == live && restored.releaseID == first.releaseID
                    && restored.modelSHA256 == first.deployment?.modelSHA256)
            let kept = try FileManager.default.contentsOfDirectory(atPath: playground.statePath).filter {
                $0.hasPrefix("current.json.unreadable-")
            }
            #expect(kept.count == 1, "the unreadable file is kept beside it")

            let next = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(next.outcome == .succeeded, "\(next.failure ?? "")")
            #expect(next.rollout?.live == live)
            #expect(
                next.rollout?.steps.map(\.weight) == [25, 50, 100],
                "a staged release against the live colour, not a first release")
        }
    }

    @Test func aStateThatDisagreesWithWhatServesIsRefusedBeforeAnyChange() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            // current.json says nothing is live, but nginx sends all traffic to the live colour.
            try FileManager.default.removeItem(atPath: playground.statePath + "/current.json")
            let error = await #expect(throws: OrchestratorError.self) {
                try await playground.run(RunOptions(force: true))
            }
            #expect(error?.code == .inconsistentState)
            #expect(
                error?.message.contains("nginx sends 100% of traffic to \(live)") == true, "\(error?.message ?? "")")
            #expect(await playground.runtime.instance(of: live) != nil)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            let last = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(
                last.outcome == .failed && last.stages.allSatisfy { $0.status == .notRun },
                "the refused run is recorded")
        }
    }

    @Test func sigtermAtAStepPutsAllTrafficBackOnTheLiveColourWithinTwoSeconds() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s", extra: try sleeperHook(playground))
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            try? FileManager.default.removeItem(atPath: playground.folder + "/sleeper.pids")
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .shifting) { $0.weight == 25 }
            let interrupted = try #require(try StateStore(folder: playground.statePath).run())
            let target = try #require(interrupted.target)
            // The hook writes its pid once it runs: on a loaded machine later than the step's start.
            let hooks: [Int32] =
                try await poll(for: .seconds(10)) { () -> [Int32]? in
                    let found = sleeperPIDs(playground)
                    return found.isEmpty ? nil : found
                } ?? []
            #expect(hooks.count == 1 && hooks.allSatisfy(isAlive), "the during-step hook runs: \(hooks)")
            let signalled = ContinuousClock.now
            controller.signal(SIGTERM)
            var restoredAfter: Duration?
            for _ in 0..<100 {
                if await playground.nginx.currentSplit()?.backends.map(\.color) == [live] {
                    restoredAfter = ContinuousClock.now - signalled
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            let status = await controller.wait()
            await load.stop()
            #expect(status >> 8 == 143, "exit 128 + SIGTERM, got \(status >> 8)")
            let after = try #require(restoredAfter, "traffic went back to \(live)")
            #expect(after < .seconds(2), "100% back on \(live) after \(after)")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.releaseID == interrupted.releaseID)
            #expect(record.outcome == .interrupted)
            #expect(record.failure?.contains("SIGTERM") == true, "\(record.failure ?? "")")
            #expect(await playground.runtime.instance(of: target) == nil, "the new colour was stopped")
            #expect(await playground.runtime.instance(of: live) != nil)
            #expect(!hooks.contains(where: isAlive), "the hook was stopped with the step")
            #expect(try StateStore(folder: playground.statePath).run() == nil, "nothing left to recover")
            #expect(
                load.samples.allSatisfy { $0.status == 200 },
                "no failed request: \(load.samples.filter { $0.status != 200 }.count)")
            #expect(try ReleaseHistory(path: playground.historyPath).verify().isEmpty)
        }
    }

    /// The second signal arrives while the rollback runs its slow on-rollback hook (the hook has
    /// written its marker): the controller exits at once, without waiting for the hook, and
    /// `orchestrate recover` converges what is left: the hook stopped, traffic on the live colour,
    /// the release recorded as not promoted, nothing left to recover.
    @Test func aSecondSignalDuringTheRollbackHookExitsAtOnceAndRecoveryConvergesWhatIsLeft() async throws {
        try await Playground.with { playground in
            let slow = playground.folder + "/slow-rollback.sh"
            let marker = playground.folder + "/hook-started"
            try "#!/bin/sh\necho $$ > \(marker)\nexec sleep 30\n".write(toFile: slow, atomically: true, encoding: .utf8)
            chmod(slow, 0o755)
            try playground.writePipeline(wait: "30s", extra: "hooks:\n  onRollback:\n    - [\(slow)]\n")
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            let controller = try await playground.startController(until: .shifting)
            controller.signal(SIGINT)
            let hook = try #require(
                try await poll(for: .seconds(60)) {
                    Int32(read(marker).trimmingCharacters(in: .whitespacesAndNewlines))
                }, "the hook started")
            let second = ContinuousClock.now
            controller.signal(SIGINT)
            let status = await controller.wait()
            #expect(ContinuousClock.now - second < .seconds(5), "the second signal exits at once")
            #expect(status >> 8 == 130, "exit 128 + SIGINT, got \(status >> 8)")
            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stderr)")
            _ = try await poll(for: .seconds(5)) { isAlive(hook) ? nil : true }
            #expect(!isAlive(hook), "the hook was stopped")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.releaseID != first.releaseID, "the interrupted release is recorded")
            #expect(
                record.outcome == .rolledBack || record.outcome == .interrupted,
                "\(record.outcome): \(record.failure ?? "")")
            #expect(try StateStore(folder: playground.statePath).run() == nil, "nothing left to recover")
            #expect(try ReleaseHistory(path: playground.historyPath).verify().isEmpty)
        }
    }

    @Test func aKilledControllersHookIsStoppedByRecovery() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s", extra: try sleeperHook(playground))
            _ = try await playground.run(Self.quick)
            try? FileManager.default.removeItem(atPath: playground.folder + "/sleeper.pids")
            let controller = try await playground.startController(until: .shifting)
            try await Task.sleep(for: .milliseconds(500))
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let hooks = sleeperPIDs(playground)
            #expect(!hooks.isEmpty && hooks.allSatisfy(isAlive), "the hook outlived its controller")
            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(recover.stderr.contains("stopped the during-step hook"), "\(recover.stderr)")
            try await Task.sleep(for: .milliseconds(200))
            #expect(!hooks.contains(where: isAlive), "recovery stopped it")
        }
    }

    @Test func rollbackAfterAnInterruptedReleaseOnlyRecoversIt() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s")
            let first = try await playground.run(Self.quick)
            let second = try await playground.run(
                RunOptions(overrides: Self.quick.overrides, force: true, noStagedShift: true),
                environment: ["EPOCHS": "12"])
            #expect(second.outcome == .succeeded)
            let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "14"])
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let rollback = try await orchestrate(["rollback", playground.pipelinePath])
            #expect(rollback.status == 0, "\(rollback.stderr)")
            #expect(rollback.stderr.contains("Nothing more was rolled back"), "\(rollback.stderr)")
            let live = try #require(try StateStore(folder: playground.statePath).live())
            #expect(
                live.releaseID == second.releaseID,
                "the healthy live release stays; \(first.releaseID) is not brought back")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live.color])
        }
    }

    @Test func abortDuringTheDrainReturnsToTheOldColour() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "4s", drain: "30s")
            let first = try await playground.run(Self.quick)
            let old = try #require(first.deployment?.color)
            let controller = try await playground.startController(until: .draining)
            let abort = try await orchestrate(["abort", playground.pipelinePath])
            #expect(abort.status == 0, "\(abort.stderr)")
            let status = await controller.wait()
            #expect(status >> 8 == 1, "an aborted release exits 1")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .rolledBack, "\(record.failure ?? "")")
            #expect(record.failure?.contains("during the drain") == true)
            let live = try #require(try StateStore(folder: playground.statePath).live())
            #expect(
                live.releaseID == first.releaseID && live.color == old, "current.json is back on the previous release")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [old])
            let other = old == "blue" ? "green" : "blue"
            #expect(await playground.runtime.instance(of: other) == nil)
        }
    }

    @Test func abortWhileDeployingMovesNoTraffic() async throws {
        try await Playground.with { playground in
            let slow = playground.folder + "/slow.sh"
            try "#!/bin/sh\nexec sleep 30\n".write(toFile: slow, atomically: true, encoding: .utf8)
            chmod(slow, 0o755)
            try playground.writePipeline(extra: "hooks:\n  preRollout:\n    - [\(slow)]\n")
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            let before = await playground.nginx.currentSplit()
            let controller = try await playground.startController(until: .deploying)
            let abort = try await orchestrate(["abort", playground.pipelinePath])
            #expect(abort.status == 0, "\(abort.stderr)")
            let status = await controller.wait()
            #expect(status >> 8 == 1)
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .rolledBack, "\(record.failure ?? "")")
            #expect(record.rollout?.steps.isEmpty == true, "no traffic step was taken")
            #expect(await playground.nginx.currentSplit() == before)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
        }
    }

    @Test func recoveryAfterAKillDuringTheDrainFinishesThePromotion() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "4s", drain: "30s")
            let first = try await playground.run(Self.quick)
            let old = try #require(first.deployment?.color)
            let controller = try await playground.startController(until: .draining)
            let run = try #require(try StateStore(folder: playground.statePath).run())
            controller.signal(SIGKILL)
            _ = await controller.wait()
            #expect(await playground.runtime.instance(of: old) != nil, "the old colour was draining")
            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(await playground.runtime.instance(of: old) == nil, "stopOld is honoured")
            let live = try #require(try StateStore(folder: playground.statePath).live())
            #expect(live.releaseID == run.releaseID)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live.color])
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.releaseID == run.releaseID && record.outcome == .succeeded)
        }
    }

    @Test func anUnreadableRunStateStillRecordsTheInterruptedRelease() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s")
            let first = try await playground.run(Self.quick)
            let live = try #require(
                first.deployment?.color, "the first release: \(first.outcome) \(first.failure ?? "")")
            let controller = try await playground.startController(until: .shifting)
            let run = try #require(try StateStore(folder: playground.statePath).run())
            controller.signal(SIGKILL)
            _ = await controller.wait()
            try Data("{\"release_id\": \"rel-".utf8).write(to: URL(fileURLWithPath: playground.statePath + "/run.json"))
            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stderr)")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.releaseID == run.releaseID, "the record kept apart from run.json names the release")
            #expect(record.outcome == .rolledBack)
            #expect(record.rollout?.events.contains { $0.detail.contains("run.json was unreadable") } == true)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            #expect(await playground.runtime.instance(of: run.target ?? "") == nil, "the unapproved colour is stopped")
            let kept = try FileManager.default.contentsOfDirectory(atPath: playground.statePath).filter {
                $0.hasPrefix("run.json.unreadable-")
            }
            #expect(kept.count == 1)
        }
    }

    @Test func withoutAutomaticRollbackAFailedGateHoldsUntilTheOperatorDecides() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            _ = try await playground.run(Self.quick)
            try playground.writePipeline(gates: Playground.impossibleGate, extra: "rollback:\n  automatic: false\n")
            let controller = try await playground.startController(until: .holding)
            let held = try #require(try StateStore(folder: playground.statePath).run())
            #expect(held.weight == 25, "traffic stays where the gate failed")
            let promote = try await orchestrate(["promote", playground.pipelinePath])
            #expect(promote.status == 0, "\(promote.stderr)")
            // The next steps fail too and hold again: abort ends it.
            _ = try await poll(for: .seconds(30)) {
                (try? StateStore(folder: playground.statePath).run())??.weight == 50 ? true : nil
            }
            _ = try await poll(for: .seconds(30)) {
                (try? StateStore(folder: playground.statePath).run())??.phase == .holding ? true : nil
            }
            let abort = try await orchestrate(["abort", playground.pipelinePath])
            #expect(abort.status == 0)
            #expect(await controller.wait() >> 8 == 1)
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .rolledBack)
            #expect(record.rollout?.events.contains { $0.kind == .hold } == true)
            #expect(record.rollout?.steps.map(\.weight) == [25, 50])
        }
    }

    /// A pipeline whose training takes minutes: 60,000 ratings, 200 factors, 10,000 epochs.
    func writeSlowTraining(_ playground: Playground, timeout: String?) throws {
        var generator = SeededGenerator(seed: 3)
        var rows = ["user_id,movie_id,rating"]
        for user in 0..<3000 {
            for _ in 0..<20 {
                rows.append("u\(user),m\(generator.nextIndex(below: 500)),\(1 + generator.nextIndex(below: 5))")
            }
        }
        try (rows.joined(separator: "\n") + "\n").write(
            toFile: playground.folder + "/big.csv", atomically: true, encoding: .utf8)
        try playground.writePipeline()
        var text = try String(contentsOfFile: playground.pipelinePath, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "with: {ratings: ratings.csv, model: models/m, factors: 8, epochs: \"${EPOCHS:-10}\"}",
            with: "with: {ratings: big.csv, model: models/m, factors: 200, epochs: 10000}"
                + (timeout.map { "\n    timeout: \($0)" } ?? ""))
        try text.write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
    }

    @Test func aBuiltinStageTimeoutStopsItsWorkWithinASecond() async throws {
        try await Playground.with { playground in
            try writeSlowTraining(playground, timeout: "1s")
            let started = ContinuousClock.now
            let record = try await playground.run()
            let took = ContinuousClock.now - started
            #expect(record.outcome == .failed)
            let stage = try #require(record.stages.first)
            #expect(stage.status == .failed)
            #expect(stage.error?.contains("timed out after 1s") == true, "\(stage.error ?? "")")
            #expect(stage.durationSeconds < 2, "stopped within a second of its timeout: \(stage.durationSeconds) s")
            #expect(took < .seconds(10))
            let trainers = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap { Int32($0) }.filter
            { pid in
                let command = String(
                    decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self)
                return command.contains("train") && command.contains(playground.folder)
            }
            #expect(trainers.isEmpty, "no training process is left: \(trainers)")
        }
    }

    @Test func sigtermDuringAStageStopsItAndRecordsTheReleaseAsInterrupted() async throws {
        try await Playground.with { playground in
            try writeSlowTraining(playground, timeout: nil)
            let controller = try await playground.startController(until: .stages) {
                $0.children.contains { $0.role == "stage train" }
            }
            let child = try #require(try StateStore(folder: playground.statePath).run()?.children.first)
            controller.signal(SIGTERM)
            let status = await controller.wait()
            #expect(status >> 8 == 143)
            #expect(!isAlive(child.pid), "the stage's process was stopped")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .interrupted)
            #expect(record.stages.first?.status == .interrupted)
            #expect(try StateStore(folder: playground.statePath).run() == nil)
        }
    }

    @Test func theDryRunsPlanIsWhatTheRunDoes() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "4s")
            for (options, environment) in [
                (["--no-staged-shift"], ["EPOCHS": "10"]), ([], ["EPOCHS": "12"]),
                (["--no-staged-shift"], ["EPOCHS": "14"]),
            ] {
                let dryRun = try await runCommand(
                    Playground.orchestrate,
                    ["run", playground.pipelinePath, "--dry-run", "--force", "--output", "json"] + options,
                    environment: ["RECENGINE_BIN": Playground.recengine].merging(environment) { $1 })
                #expect(dryRun.status == 0, "\(dryRun.stderr)")
                let planned = try JSONDecoder.iso8601.decode(RunPlan.self, from: Data(dryRun.stdout.utf8))
                let record = try await playground.run(
                    RunOptions(force: true, noStagedShift: !options.isEmpty), environment: environment)
                let done = try #require(record.plan)
                #expect(done.stages.map(\.action) == planned.stages.map(\.action))
                #expect(done.stages.map(\.command) == planned.stages.map(\.command))
                #expect(done.rollout?.live == planned.rollout?.live)
                #expect(done.rollout?.target == planned.rollout?.target)
                #expect(done.rollout?.steps.map(\.newWeight) == planned.rollout?.steps.map(\.newWeight))
                #expect(
                    record.rollout?.steps.map(\.weight) == planned.rollout?.steps.map(\.newWeight),
                    "the steps taken are the steps planned")
                #expect(record.deployment?.color == planned.rollout?.target)
                #expect(record.stages.map(\.status) == planned.stages.map { $0.action == .run ? .succeeded : .cached })
            }
        }
    }
}

extension JSONDecoder {
    static var iso8601: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// Polls until `check` gives a value (or the time runs out).
func poll<T>(for timeout: Duration = .seconds(30), _ check: () async throws -> T?) async throws -> T? {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if let value = try await check() { return value }
        try await Task.sleep(for: .milliseconds(50))
    }
    return nil
}

/// The process runtime's own faults.
@Suite struct ProcessRuntimeTests {
    @Test func aColourThatExitsAtStartReportsItsOwnLogNotThePreviousOnes() async throws {
        try await withTemporaryDirectory { folder in
            let runtime = ProcessRuntime(stateFolder: folder + "/state", recengine: Playground.recengine)
            var messages: [String] = []
            for attempt in ["first", "second"] {
                // A model directory whose tensors are garbage: the server refuses it at start.
                try write("not tensors \(attempt)", to: folder + "/\(attempt)/model.safetensors")
                try write("{}", to: folder + "/\(attempt)/manifest.json")
                let error = await #expect(throws: OrchestratorError.self) {
                    try await runtime.deploy(
                        color: "blue", modelDirectory: folder + "/\(attempt)", timeout: .seconds(20))
                }
                messages.append(error?.message ?? "")
            }
            #expect(messages[0].contains("exited at start"), "\(messages[0])")
            let firstDigest = try #require(
                try FileManager.default.contentsOfDirectory(atPath: folder + "/state/models").first {
                    messages[0].contains($0.prefix(12)) || messages[0].contains($0)
                })
            #expect(
                !messages[1].contains(firstDigest),
                "the second failure shows the second process's log only: \(messages[1])")
        }
    }
}
