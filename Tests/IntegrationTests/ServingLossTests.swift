import DeploymentRuntimes
import Foundation
import HTTPTransport
import Orchestrator
import Provenance
import StrictYAML
import TestSupport
import Testing
import Traffic

/// What serves is lost in the middle of a rollout: nginx's master killed (kill -9, as the OOM
/// killer does: its workers serve on, holding the port) or the live colour killed. Real nginx,
/// Prometheus and colours, a load that never retries, and every nginx worker the test orphans
/// killed in cleanup.
@Suite(.serialized) struct ServingLossTests {
    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }

    // MARK: nginx's master killed

    /// nginx's master killed with kill -9. Its workers, found through the process table before
    /// the kill, are killed in `cleanUp` whatever the test did, so none outlives it.
    struct KilledMaster {
        let master: Int32
        let workers: [Int32]

        init(_ playground: Playground) async throws {
            let master = try #require(LocalNginx().masterPID(playground.nginx.config), "nginx runs")
            self.master = master
            workers = Self.children(of: master)
            try #require(!workers.isEmpty, "nginx has workers")
            kill(master, SIGKILL)
            _ = try await poll(for: .seconds(10)) { Self.isAlive(master) ? nil : true }
        }

        var orphansAlive: [Int32] { workers.filter(Self.isAlive) }

        func cleanUp() {
            for worker in workers where Self.isAlive(worker) && Self.command(of: worker).hasPrefix("nginx") {
                kill(worker, SIGKILL)
            }
        }

        static func children(of parent: Int32) -> [Int32] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter {
                pid in
                let stat = read("/proc/\(pid)/stat")
                guard let close = stat.lastIndex(of: ")") else { return false }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 1 && Int32(fields[1]) == parent
            }
        }

        static func isAlive(_ pid: Int32) -> Bool {
            kill(pid, 0) == 0 && !read("/proc/\(pid)/stat").contains(") Z ")
        }

        static func command(of pid: Int32) -> String {
            read("/proc/\(pid)/cmdline").split(separator: "\0").joined(separator: " ")
        }
    }

    /// Starts a release in another process and returns once nginx has its 50 % step in force (the
    /// controller journals a step before it applies it), with the release's new colour.
    func startReleaseAt50Percent(_ playground: Playground) async throws -> (ChildProcess, target: String) {
        let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "12"]) {
            $0.weight == 50
        }
        let target = try #require(try StateStore(folder: playground.statePath).run()?.target)
        let applied = try await poll(for: .seconds(30)) {
            await playground.nginx.currentSplit()?.weight(of: target) == 50 ? true : nil
        }
        if applied == nil {
            controller.signal(SIGKILL)
            _ = await controller.wait()
            throw PlaygroundError("nginx did not get the 50% step: \(read(playground.controllerLog))")
        }
        return (controller, target)
    }

    /// The colour that answered, for requests sent after `since` (`DispatchTime` nanoseconds).
    static func colours(after since: UInt64, in samples: [KeepAliveLoad.Sample]) -> Set<String> {
        Set(samples.filter { $0.started > since && $0.failure == nil }.compactMap(\.color))
    }

    static func failures(_ samples: [KeepAliveLoad.Sample]) -> String {
        "\(samples.filter { $0.failure != nil }.count) of \(samples.count) requests failed: "
            + "\(Dictionary(grouping: samples.compactMap(\.failure), by: { $0 }).mapValues(\.count))"
    }

    /// The fresh nginx took the orphans' listening sockets over: no connection was refused, every
    /// answer was 200, and only keep-alive connections the orphans closed while idle (as a reload
    /// does) could lose the request sent at that instant: at most one per connection.
    static func expectThePortNeverClosed(_ samples: [KeepAliveLoad.Sample], connections: Int = 8) {
        #expect(
            !samples.contains { $0.failure?.hasPrefix("connect:") == true },
            "the port never closed: \(failures(samples))")
        #expect(samples.allSatisfy { $0.status == 200 || $0.status == 0 }, "no answer but 200: \(failures(samples))")
        #expect(samples.filter { $0.failure != nil }.count <= connections, "\(failures(samples))")
    }

    /// The fault itself, under the controller: the orphaned worker serves the 50/50 split and holds
    /// the port; applying "all on blue" puts it in force on the orphan first, then replaces the
    /// orphan with a fresh nginx, never deleting a socket the orphan still listens on. With the
    /// sockets handed over the port never closes; without (a kernel or user that may not copy
    /// them), the orphan stops first and only new connections are refused for a moment.
    @Test(arguments: [true, false])
    func aSplitAppliedAfterTheMasterWasKilledTakesEffectAndAFreshNginxReplacesItsOrphans(
        handsOverSockets: Bool
    ) async throws {
        try await TrafficShiftTests.withColours { playground, model in
            let runtime = playground.runtime
            var nginx = playground.nginx
            nginx.host = LocalNginx(handsOverSockets: handsOverSockets)
            let blue = try await runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
            let green = try await runtime.deploy(color: "green", modelDirectory: model, timeout: .seconds(30))
            try await nginx.apply(TrafficShiftTests.split(live: blue, target: green, weight: 50))
            let load = KeepAliveLoad(port: playground.nginxPort)
            load.start()
            var killed: KilledMaster?
            do {
                try await load.waitForAnswers(200, minimum: .milliseconds(500), maximum: .seconds(10))
                killed = try await KilledMaster(playground)
                let orphans = try #require(killed?.workers)
                try await load.waitForAnswers(200, minimum: .milliseconds(500), maximum: .seconds(10))
                #expect(killed?.orphansAlive == orphans, "the workers serve on without their master")
                #expect(!(await nginx.isRunning()))
                #expect(await nginx.orphanedWorkers() == orphans)
                let report = try #require(await nginx.currentTraffic())
                #expect(
                    report.source == .nginx && report.orphanedWorkers == orphans,
                    "the split is read from the orphans: \(report)")
                #expect(report.state.split.weight(of: "green") == 50)

                let applied = try await nginx.apply(TrafficShiftTests.split(live: blue, target: nil, weight: 0))
                let after = DispatchTime.now().uptimeNanoseconds
                #expect(applied.replacedOrphans == orphans)
                #expect(killed?.orphansAlive == [], "the orphans are gone")
                let master = try #require(LocalNginx().masterPID(nginx.config), "a fresh nginx runs")
                #expect(master != killed?.master)
                #expect(await nginx.orphanedWorkers() == [])
                let inForce = try #require(await nginx.currentTraffic())
                #expect(inForce.source == .nginx && inForce.state.split.backends.map(\.color) == ["blue"])
                try await load.waitForAnswers(400, minimum: .milliseconds(700), maximum: .seconds(10))
                let samples = await load.stop()
                #expect(Self.colours(after: after, in: samples) == ["blue"], "the rejected colour no longer answers")
                print(
                    "master killed, split applied through a fresh nginx (sockets handed over: \(handsOverSockets)): \(Self.failures(samples))"
                )
                if handsOverSockets {
                    Self.expectThePortNeverClosed(samples)
                } else {
                    #expect(
                        samples.allSatisfy { $0.status == 200 || $0.status == 0 },
                        "no answer but 200: \(Self.failures(samples))")
                }
            } catch {
                _ = await load.stop()
                killed?.cleanUp()
                throw error
            }
            killed?.cleanUp()
        }
    }

    /// A rollout whose nginx master is killed at 50 %: the controller notices within about a
    /// second, puts the step's split in force again on a fresh nginx, and goes on.
    @Test func aRolloutWhoseNginxMasterIsKilledAt50PercentReplacesItAndGoesOn() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "6s")
            let first = try await playground.run(FaultTests.quick)
            let live = try #require(first.deployment?.color)
            let load = KeepAliveLoad(port: playground.nginxPort)
            load.start()
            var killed: KilledMaster?
            do {
                let (controller, _) = try await startReleaseAt50Percent(playground)
                try await Task.sleep(for: .milliseconds(500))
                killed = try await KilledMaster(playground)
                let orphans = try #require(killed?.workers)
                let status = await controller.wait()
                let samples = await load.stop()
                #expect(status >> 8 == 0, "the release goes on and is promoted: \(read(playground.controllerLog))")
                let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
                #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
                let events = record.rollout?.events ?? []
                let replaced = try #require(
                    events.first { $0.kind == .recover && $0.detail.contains("orphaned workers") },
                    "\(events.map(\.detail))")
                #expect(
                    replaced.detail.contains("pid \(orphans.map(String.init).joined(separator: ", "))"),
                    "\(replaced.detail)")
                #expect(
                    events.contains { $0.kind == .shift && $0.detail.contains("50% again: nginx's master was gone") },
                    "\(events.map(\.detail))")
                #expect(record.rollout?.steps.map(\.weight) == [25, 50, 100])
                #expect(killed?.orphansAlive == [], "no orphaned worker is left")
                let target = try #require(record.deployment?.color)
                #expect(target != live)
                let inForce = try #require(await playground.nginx.currentTraffic())
                #expect(
                    inForce.source == .nginx && inForce.orphanedWorkers.isEmpty
                        && inForce.state.split.backends.map(\.color) == [target])
                #expect(LocalNginx().masterPID(playground.nginx.config) != nil)
                print("master killed at 50% of a rollout: \(Self.failures(samples))")
                Self.expectThePortNeverClosed(samples)
                let after = try await orchestrate(["status", playground.pipelinePath])
                #expect(after.status == 0, "\(after.stdout)\(after.stderr)")
            } catch {
                _ = await load.stop()
                killed?.cleanUp()
                throw error
            }
            killed?.cleanUp()
        }
    }

    /// nginx's master and the controller both killed at 50 % (one OOM kill takes both): `status`
    /// tells the truth and exits 1, `recover` converges through the orphan; later master kills,
    /// with nothing else pending, are fixed by `repair`, by `recover` and by the next `run`.
    @Test func afterTheMasterIsKilledStatusTellsTheTruthAndRecoverRepairAndRunFixIt() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(steps: "[50, 100]", wait: "30s")
            let first = try await playground.run(FaultTests.quick)
            let live = try #require(first.deployment?.color)
            var killed: [KilledMaster] = []
            defer { killed.forEach { $0.cleanUp() } }

            let (controller, target) = try await startReleaseAt50Percent(playground)
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let run = try #require(try StateStore(folder: playground.statePath).run())
            killed.append(try await KilledMaster(playground))

            let status = try await orchestrate(["status", playground.pipelinePath])
            #expect(status.status == 1)
            let worker = killed[0].workers.map(String.init).joined(separator: ", ")
            #expect(status.stdout.contains("MASTER GONE, orphaned worker pid \(worker) serving"), "\(status.stdout)")
            #expect(
                status.stdout.contains("\(live) 50%, \(target) 50%")
                    || status.stdout.contains("\(target) 50%, \(live) 50%"), "\(status.stdout)")
            #expect(
                status.stdout.contains("in force)"),
                "the split is read from the orphan, not the state file: \(status.stdout)")
            #expect(status.stderr.contains("orchestrate recover"), "\(status.stderr)")
            let json = try await orchestrate(["status", playground.pipelinePath, "--output", "json"])
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(object?["nginx_orphaned_workers"] as? [Int] == killed[0].workers.map(Int.init), "\(json.stdout)")
            #expect(object?["nginx_running"] as? Bool == false)

            let recover = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(killed[0].orphansAlive == [], "recover replaced the orphan")
            #expect(await playground.nginx.currentTraffic()?.state.split.backends.map(\.color) == [live])
            #expect(await playground.runtime.instance(of: target) == nil)
            let recovered = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(recovered.releaseID == run.releaseID && recovered.outcome == .rolledBack)
            #expect(
                recovered.rollout?.events.contains { $0.kind == .recover && $0.detail.contains("orphaned workers") }
                    == true)
            #expect(try await orchestrate(["status", playground.pipelinePath]).status == 0)
            #expect(try await orchestrate(["repair", playground.pipelinePath]).stdout.contains("nothing to repair"))

            // Nothing pending, the split all on the live colour: repair replaces the orphan.
            killed.append(try await KilledMaster(playground))
            let orphaned = try await orchestrate(["status", playground.pipelinePath])
            #expect(orphaned.status == 1)
            #expect(orphaned.stderr.contains("`orchestrate repair` replaces them"), "\(orphaned.stderr)")
            let repair = try await orchestrate(["repair", playground.pipelinePath])
            #expect(repair.status == 0, "\(repair.stderr)")
            #expect(repair.stdout.contains("done: nginx's master is gone"), "\(repair.stdout)")
            #expect(killed[1].orphansAlive == [])
            #expect(try await orchestrate(["status", playground.pipelinePath]).status == 0)

            // recover does the same when nothing was interrupted.
            killed.append(try await KilledMaster(playground))
            let recoverOnly = try await orchestrate(["recover", playground.pipelinePath])
            #expect(recoverOnly.status == 0, "\(recoverOnly.stderr)")
            #expect(killed[2].orphansAlive == [])
            #expect(try ReleaseHistory(path: playground.historyPath).records().last?.action == .repair)
            #expect(try await orchestrate(["status", playground.pipelinePath]).status == 0)

            // The next release is not refused: its first step replaces the orphan.
            killed.append(try await KilledMaster(playground))
            try playground.writePipeline(steps: "[50, 100]", wait: "4s")
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let ran = try? await runCommand(
                Playground.orchestrate, ["run", playground.pipelinePath, "--force"],
                environment: ["RECENGINE_BIN": Playground.recengine, "EPOCHS": "14"])
            await load.stop()
            let next = try #require(ran)
            #expect(next.status == 0, "\(next.stderr)")
            #expect(killed[3].orphansAlive == [])
            #expect(try await orchestrate(["status", playground.pipelinePath]).status == 0)
            #expect(try ReleaseHistory(path: playground.historyPath).verify().isEmpty)
        }
    }

    // MARK: The live colour killed

    /// The live colour killed at 50 %: noticed within about a second, not at the step's end (30 s
    /// here); all traffic goes to the only colour that serves, the live release is redeployed on
    /// its colour from the model store, traffic goes back to it and the new colour stops. No
    /// request fails, and the controller exits with all traffic on the approved model.
    @Test func theLiveColourKilledAt50PercentIsRestoredAndTheReleaseRolledBack() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(steps: "[50, 100]", wait: "30s")
            let first = try await playground.run(FaultTests.quick)
            let live = try #require(first.deployment?.color)
            let approved = try #require(first.deployment?.modelSHA256)
            let load = KeepAliveLoad(port: playground.nginxPort)
            load.start()
            do {
                let (controller, target) = try await startReleaseAt50Percent(playground)
                try await Task.sleep(for: .milliseconds(500))
                let victim = try #require(await playground.runtime.instance(of: live)?.pid)
                let clock = ContinuousClock()
                let killedAt = clock.now
                kill(victim, SIGKILL)
                async let exit = controller.wait()
                // What nginx has in force, looked at every 20 ms: all on the new colour, then all back on the live one.
                var allOnTarget: Duration?
                var restoredAfter: Duration?
                for _ in 0..<1500 where restoredAfter == nil {
                    let colours = await playground.nginx.currentSplit()?.serving.map(\.color)
                    if allOnTarget == nil && colours == [target] { allOnTarget = clock.now - killedAt }
                    if allOnTarget != nil && colours == [live] { restoredAfter = clock.now - killedAt }
                    try await Task.sleep(for: .milliseconds(20))
                }
                let status = await exit
                let exited = clock.now - killedAt
                try await load.waitForAnswers(300, minimum: .milliseconds(500), maximum: .seconds(10))
                let samples = await load.stop()
                #expect(status >> 8 == 1, "a rolled-back release exits 1: \(read(playground.controllerLog))")
                #expect(exited < .seconds(25), "the controller did not wait for the step's 30 s: \(exited)")
                let noticed = try #require(allOnTarget, "all traffic went to \(target), the only colour serving")
                #expect(noticed < .seconds(10), "noticed within about a second, far from the step's 30 s: \(noticed)")
                #expect(restoredAfter != nil, "all traffic went back to \(live)")
                let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
                #expect(record.outcome == .rolledBack, "\(record.failure ?? "")")
                #expect(
                    record.failure?.contains("the live colour \(live) stopped running at 50%") == true,
                    "\(record.failure ?? "")")
                #expect(record.rollout?.target == target)
                let events = record.rollout?.events ?? []
                #expect(
                    events.contains { $0.kind == .shift && $0.detail.contains("stopped running") },
                    "\(events.map(\.detail))")
                #expect(
                    events.contains {
                        $0.kind == .shift && $0.detail.hasPrefix("\(target) 100% (\(live), the live colour, is lost")
                    }, "\(events.map(\.detail))")
                #expect(
                    events.contains {
                        $0.kind == .deploy && $0.detail.contains("redeploying the live release \(first.releaseID)")
                    })
                #expect(events.contains { $0.kind == .shift && $0.detail == "\(live) 100% (traffic restored)" })
                let restored = try #require(await playground.runtime.instance(of: live), "the live colour serves again")
                #expect(restored.pid != victim && restored.modelSHA256 == approved, "the approved model, redeployed")
                #expect(await playground.runtime.instance(of: target) == nil, "the new colour is stopped")
                #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
                #expect(try StateStore(folder: playground.statePath).live()?.releaseID == first.releaseID)
                print(
                    "live colour killed at 50%: all traffic on \(target) after \(noticed), back on the approved colour after \(restoredAfter.map { "\($0)" } ?? "-"), controller exited after \(exited); \(Self.failures(samples))"
                )
                #expect(samples.allSatisfy { $0.failure == nil }, "\(Self.failures(samples))")
                let after = try await orchestrate(["status", playground.pipelinePath])
                #expect(after.status == 0, "\(after.stdout)\(after.stderr)")
                #expect(try ReleaseHistory(path: playground.historyPath).verify().isEmpty)
            } catch {
                _ = await load.stop()
                throw error
            }
        }
    }

    /// What the old hint led to: the controller and the live colour both killed at 50 %, then
    /// `rollback --to` the live release. The colour whose share nginx still lists but which is dead
    /// is the idle one; the colour that carries all the traffic is never redeployed.
    @Test func rollbackToNeverRedeploysOnTheColourThatCarriesTheTraffic() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(steps: "[50, 100]", wait: "30s")
            let first = try await playground.run(FaultTests.quick)
            let live = try #require(first.deployment?.color)
            let (controller, target) = try await startReleaseAt50Percent(playground)
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let carrying = try #require(await playground.runtime.instance(of: target))
            kill(try #require(await playground.runtime.instance(of: live)?.pid), SIGKILL)
            _ = try await poll { await playground.runtime.instance(of: live) == nil ? true : nil }

            let load = KeepAliveLoad(port: playground.nginxPort)
            load.start()
            let rollback: (status: Int32, stdout: String, stderr: String)
            do {
                try await load.waitForAnswers(200, minimum: .milliseconds(500), maximum: .seconds(10))
                rollback = try await orchestrate(["rollback", playground.pipelinePath, "--to", first.releaseID])
                try await load.waitForAnswers(200, minimum: .milliseconds(500), maximum: .seconds(10))
            } catch {
                _ = await load.stop()
                throw error
            }
            let samples = await load.stop()
            #expect(rollback.status == 0, "\(rollback.stderr)")
            #expect(
                rollback.stderr.contains("redeploying it on \(live), which carries no traffic"), "\(rollback.stderr)")
            #expect(
                await playground.runtime.instance(of: target)?.pid == carrying.pid,
                "\(target) carried the traffic and was not redeployed")
            let restored = try #require(await playground.runtime.instance(of: live))
            #expect(restored.modelSHA256 == first.deployment?.modelSHA256)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            print("rollback --to after the live colour was killed: \(Self.failures(samples))")
            #expect(samples.allSatisfy { $0.failure == nil }, "\(Self.failures(samples))")
        }
    }
}
