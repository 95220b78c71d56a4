import DeploymentRuntimes
import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import PipelineSchema
import Provenance
import TestSupport
import Testing
import Traffic

/// The swarm `scripts/swarm up` started for the tests (scripts/test exports where it is).
struct SwarmTestCluster: Sendable {
    var manager: String
    var engines: [String]
    var nodeAddresses: [String]
    var image: String

    static let current: SwarmTestCluster? = {
        let environment = ProcessInfo.processInfo.environment
        guard let manager = environment["ORCHESTRATE_TEST_SWARM_MANAGER"], !manager.isEmpty,
            let engines = environment["ORCHESTRATE_TEST_SWARM_ENGINES"]?.split(separator: " ").map(String.init),
            engines.count >= 3
        else { return nil }
        return SwarmTestCluster(
            manager: manager, engines: engines,
            nodeAddresses: (environment["ORCHESTRATE_TEST_SWARM_NODE_ADDRESSES"] ?? "").split(separator: " ").map(
                String.init),
            image: environment["ORCHESTRATE_TEST_SWARM_IMAGE"] ?? "localhost/recengine:latest")
    }()

    static var available: Bool { current != nil }

    /// `scripts/swarm ARGUMENTS` (kill a node, bring it back).
    static func script(_ arguments: [String]) async throws {
        let script = Playground.root.appendingPathComponent("scripts/swarm").path
        let child = try ChildProcess.spawn(
            script, arguments,
            environment: ["ORCHESTRATE_BIN": Playground.orchestrate, "RECENGINE_BIN": Playground.recengine],
            log: FileManager.default.temporaryDirectory.appendingPathComponent(
                "swarm-\(arguments.joined(separator: "-")).log"
            ).path)
        let status = await child.wait()
        guard status == 0 else {
            throw PlaygroundError("scripts/swarm \(arguments.joined(separator: " ")) exited with \(status)")
        }
    }
}

/// The rollout with `runtime: swarm` on a real 3-node Docker Swarm (one dockerd per network
/// namespace, `scripts/swarm`): each colour a service of 3 tasks spread over the zones, nginx on
/// this machine sending each colour's share to every task, real Prometheus gates scraping every
/// task, steady load through nginx.
@Suite(
    .serialized,
    .enabled(
        if: SwarmTestCluster.available, "needs a swarm: scripts/test starts one with scripts/swarm up (root, docker.io)"
    ))
struct SwarmRolloutTests {
    let cluster = SwarmTestCluster.current!

    func manager() throws -> DockerEngine { try DockerEngine(host: cluster.manager) }

    /// Whether the playground's `color` has a service on the swarm.
    func hasService(_ color: String, in playground: Playground) async throws -> Bool {
        try await !manager().services(labels: ["orchestrate.service": playground.service, "orchestrate.color": color])
            .isEmpty
    }

    /// `orchestrate recover` of the playground's pipeline, in another process.
    func recover(_ playground: Playground) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(
            Playground.orchestrate, ["recover", playground.pipelinePath],
            environment: ["RECENGINE_BIN": Playground.recengine])
    }

    /// The second release first passes a shadow stage: nginx asks the new colour's tasks on the
    /// other nodes for half of the live requests, before any user sees it.
    @Test func aReleaseIsPromotedThroughEveryStepWithTasksOnAllThreeNodes() async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(
                steps: "[25, 50, 75, 100]", wait: "3s",
                traffic:
                    "  shadow: {share: 50, duration: 60s, requests: 40, gates: {rbo: {min: 0.3}, errors: {max: 0.05}}}")
            let first = try await playground.run()
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
            let firstColor = try #require(first.deployment?.color)
            #expect(first.deployment?.runtime == "swarm")

            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let rollout = try #require(second.rollout)
            let shadow = try #require(rollout.shadow)
            #expect(shadow.passed && shadow.compared >= 40 && shadow.errors == 0, "\(shadow.verdict)")
            #expect(rollout.steps.first.map { $0.startedOn >= shadow.finishedOn } == true)
            #expect(rollout.steps.map(\.weight) == [25, 50, 75, 100])
            #expect(rollout.steps.allSatisfy { $0.passed == true })
            let samples = playground.lastSamples
            #expect(samples.count > 100)
            #expect(
                samples.allSatisfy { $0.status == 200 },
                "no failed request: \(samples.filter { $0.status != 200 }.count) failed")
            #expect(samples.contains { $0.color == firstColor } && samples.contains { $0.color == rollout.target })

            // Three tasks, one on each node, each one an upstream address.
            let instance = try #require(await playground.runtime.instance(of: rollout.target))
            #expect(Set(instance.addresses.map { String($0.split(separator: ":")[0]) }) == Set(cluster.nodeAddresses))
            let split = try #require(await playground.nginx.currentSplit())
            #expect(split.backends.map(\.color) == [rollout.target])
            #expect(Set(split.backends[0].addresses) == Set(instance.addresses))
            // Labelled like a stack; the old colour's service is gone (stopOld).
            let services = try await manager().services(labels: ["com.docker.stack.namespace": playground.service])
            #expect(services.map(\.name) == ["\(playground.service)_\(rollout.target)"])
            #expect(services.first?.labels["orchestrate.model.sha256"] == second.deployment?.modelSHA256)
            #expect(services.first?.publishMode == "host")
            // Prometheus scraped every task of the new colour.
            #expect(
                read(playground.statePath + "/targets.json").components(separatedBy: cluster.nodeAddresses[0]).count
                    >= 2)
        }
    }

    @Test func aBadModelIsRolledBackAndTheLiveTasksKeepServing() async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            try playground.writePipeline(gates: Playground.impossibleGate)
            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .rolledBack, "\(second.failure ?? "")")
            let target = try #require(second.rollout?.target)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            #expect(await playground.runtime.instance(of: target) == nil, "the new colour's service is removed")
            #expect(try await !hasService(target, in: playground))
            let serving = try #require(await playground.runtime.instance(of: live))
            #expect(serving.modelSHA256 == first.deployment?.modelSHA256)
            #expect(serving.addresses.count == 3)
            #expect(playground.lastSamples.allSatisfy { $0.status == 200 })
        }
    }

    @Test func rollbackToAReleaseWhoseServiceWasRemovedDeploysItAgain() async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let firstColor = try #require(first.deployment?.color)
            #expect(
                await playground.runtime.instance(of: firstColor) == nil, "release 1's service was removed by stopOld")

            let pipeline = try PipelineLoader().load(playground.pipelinePath)
            let record = try await ReleaseController(pipeline: pipeline, options: RunOptions()).rollback(
                to: first.releaseID)
            #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
            let instance = try #require(await playground.runtime.instance(of: firstColor))
            #expect(instance.modelSHA256 == first.deployment?.modelSHA256)
            #expect(instance.addresses.count == 3)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [firstColor])
            let answer = try await HTTPClient.get(
                "http://127.0.0.1:\(playground.nginxPort)/health", limit: .forTests, timeout: .seconds(2))
            #expect(answer.status == 200)
        }
    }

    /// `publish: auto` finds out once per swarm whether the routing mesh answers on every node,
    /// keeps what it found, publishes accordingly, and `status` says so.
    @Test func publishAutoDetectsWhetherTheRoutingMeshWorks() async throws {
        try await Playground.with(swarm: cluster) { playground in
            playground.swarmPublish = "auto"
            try playground.writePipeline()
            // A finding that does not read (a truncated file) is checked again, not trusted.
            try FileManager.default.createDirectory(atPath: playground.statePath, withIntermediateDirectories: true)
            try write("{\"cluster", to: playground.statePath + "/routing-mesh.json")
            let first = try await playground.run()
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
            let color = try #require(first.deployment?.color)
            let found = try #require(
                try JSONSerialization.jsonObject(with: Data(read(playground.statePath + "/routing-mesh.json").utf8))
                    as? [String: Any])
            let works = try #require(found["works"] as? Bool)
            let service = try #require(
                try await manager().services(labels: ["orchestrate.service": playground.service]).first)
            #expect(service.publishMode == (works ? "ingress" : "host"))
            let placement = try #require(await playground.runtime.instance(of: color)?.placement)
            #expect(placement.contains(works ? "routing mesh" : "routing mesh unavailable"), "\(placement)")
            #expect(placement.hasPrefix("3/3 tasks on node1, node2, node3"), "\(placement)")
            let answer = try await HTTPClient.get(
                "http://127.0.0.1:\(playground.nginxPort)/health", limit: .forTests, timeout: .seconds(2))
            #expect(answer.status == 200)
            let instance = try #require(await playground.runtime.instance(of: color))
            #expect(instance.addresses.count == 3)
        }
    }

    /// The manager's Engine API goes away for 4 s at 50 % (its socket moved aside; the engine and
    /// every task run on): the controller cannot see the tasks, probes the ones nginx sends traffic
    /// to instead, finds them answering, and the release goes on to be promoted with no failed
    /// request, rather than taking an unanswered API for lost tasks and rolling back.
    @Test func theManagersAPIGoneForAWhileMidStepIsNotTakenForLostTasks() async throws {
        let socket = String(cluster.manager.dropFirst("unix://".count))
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "8s")
            let first = try await playground.run()
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "12"]) {
                $0.weight == 50
            }
            do {
                try FileManager.default.moveItem(atPath: socket, toPath: socket + ".away")
                try await Task.sleep(for: .seconds(4))
                try FileManager.default.moveItem(atPath: socket + ".away", toPath: socket)
            } catch {
                try? FileManager.default.moveItem(atPath: socket + ".away", toPath: socket)
                controller.signal(SIGKILL)
                _ = await controller.wait()
                await load.stop()
                throw error
            }
            let status = await controller.wait()
            await load.stop()
            #expect(status >> 8 == 0, "\(read(playground.controllerLog))")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
            #expect(await playground.nginx.currentSplit()?.backends.first?.addresses.count == 3)
            let failed = load.samples.filter { $0.status != 200 }
            #expect(load.samples.count > 100)
            #expect(failed.isEmpty, "\(failed.count) of \(load.samples.count) requests failed")
        }
    }

    /// The controller stopped at 50 % on a swarm, under load: SIGTERM puts all traffic back on the
    /// live colour's tasks and removes the new colour's service before the controller exits (143,
    /// the release recorded as interrupted); after kill -9 the new colour keeps serving its share
    /// until `orchestrate recover` does the same (the release recorded as rolled back by the
    /// recovery). No request fails either way.
    @Test(arguments: [SIGTERM, SIGKILL])
    func aControllerStoppedAtHalfTrafficLeavesTheLiveTasksServing(signal: Int32) async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "12s")
            let first = try await playground.run(RunOptions(overrides: ["traffic.wait=3s"]))
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
            let live = try #require(first.deployment?.color)
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "12"]) {
                $0.weight == 50
            }
            let interrupted = try #require(try StateStore(folder: playground.statePath).run())
            let target = try #require(interrupted.target)
            try await Task.sleep(for: .seconds(1))
            controller.signal(signal)
            let status = await controller.wait()
            if signal == SIGTERM {
                #expect(status >> 8 == 143, "exit 128 + SIGTERM, got \(status): \(read(playground.controllerLog))")
            } else {
                #expect(
                    await playground.nginx.currentSplit()?.backends.map(\.color).sorted() == [live, target].sorted(),
                    "nginx keeps the split of the killed controller")
                try await Task.sleep(for: .seconds(1))
                let recovery = try await recover(playground)
                #expect(recovery.status == 0, "\(recovery.stderr)")
            }
            try await Task.sleep(for: .milliseconds(300))
            await load.stop()
            let split = try #require(await playground.nginx.currentSplit())
            #expect(split.backends.map(\.color) == [live])
            #expect(split.backends.first?.addresses.count == 3)
            #expect(try await !hasService(target, in: playground), "the new colour's service is removed")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.releaseID == interrupted.releaseID)
            // SIGTERM: the controller stopped its own release; kill -9: recovery rolled it back.
            #expect(record.outcome == (signal == SIGTERM ? .interrupted : .rolledBack), "\(record.failure ?? "")")
            #expect(
                record.failure?.contains(signal == SIGTERM ? "SIGTERM" : "interrupted while shifting") == true,
                "\(record.failure ?? "")")
            #expect(try StateStore(folder: playground.statePath).run() == nil, "nothing left to recover")
            let failed = load.samples.filter { $0.status != 200 }
            #expect(load.samples.count > 50)
            #expect(failed.isEmpty, "\(failed.count) of \(load.samples.count) requests failed")
        }
    }

    /// kill -9 at 50 %, then `orchestrate recover` while the manager's API does not answer: it
    /// cannot know what runs, so it exits 4 and changes nothing (nginx keeps the split, the run
    /// stays pending) rather than taking every colour for stopped; once the API is back, recover
    /// rolls back. The tasks serve on throughout.
    @Test func recoveryWaitsForTheManagersAPIInsteadOfConvergingBlind() async throws {
        let socket = String(cluster.manager.dropFirst("unix://".count))
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "12s")
            let first = try await playground.run(RunOptions(overrides: ["traffic.wait=3s"]))
            let live = try #require(first.deployment?.color)
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "12"]) {
                $0.weight == 50
            }
            let target = try #require(try StateStore(folder: playground.statePath).run()?.target)
            controller.signal(SIGKILL)
            _ = await controller.wait()
            try FileManager.default.moveItem(atPath: socket, toPath: socket + ".away")
            let blind: (status: Int32, stdout: String, stderr: String)
            do {
                blind = try await recover(playground)
            } catch {
                try? FileManager.default.moveItem(atPath: socket + ".away", toPath: socket)
                throw error
            }
            try FileManager.default.moveItem(atPath: socket + ".away", toPath: socket)
            #expect(blind.status == 4, "\(blind.stderr)")
            #expect(blind.stderr.contains("does not answer"), "\(blind.stderr)")
            #expect(try StateStore(folder: playground.statePath).run() != nil, "the run is kept for recovery")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color).sorted() == [live, target].sorted())
            #expect(
                try ReleaseHistory(path: playground.historyPath).records().last?.releaseID == first.releaseID,
                "nothing recorded")

            let recovered = try await recover(playground)
            #expect(recovered.status == 0, "\(recovered.stderr)")
            try await Task.sleep(for: .milliseconds(300))
            await load.stop()
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            #expect(try await !hasService(target, in: playground))
            #expect(try ReleaseHistory(path: playground.historyPath).records().last?.outcome == .rolledBack)
            #expect(load.samples.count > 20 && load.samples.allSatisfy { $0.status == 200 })
        }
    }

    /// kill -9 while the new colour's tasks start (its service created, no task healthy yet):
    /// `orchestrate recover` removes that service too, not only a colour that already serves, and
    /// the live tasks serve on throughout.
    @Test func aControllerKilledWhileTheNewTasksStartLeavesNoServiceBehindAfterRecovery() async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "3s")
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .deploying, environment: ["EPOCHS": "12"])
            let target = try #require(try StateStore(folder: playground.statePath).run()?.target)
            let created = try await poll(for: .seconds(60)) { () async throws -> Bool? in
                try await hasService(target, in: playground) ? true : nil
            }
            controller.signal(SIGKILL)
            _ = await controller.wait()
            #expect(created == true, "the new colour's service was created: \(read(playground.controllerLog))")
            let recovery = try await recover(playground)
            #expect(recovery.status == 0, "\(recovery.stderr)")
            await load.stop()
            #expect(try await !hasService(target, in: playground), "\(recovery.stderr)")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .rolledBack, "\(record.failure ?? "")")
            #expect(try StateStore(folder: playground.statePath).run() == nil)
            #expect(load.samples.count > 20 && load.samples.allSatisfy { $0.status == 200 })
        }
    }

    /// kill -9 while the old colour drains after the promotion: `orchestrate recover` finishes the
    /// promotion (all traffic on the new colour's 3 tasks, the old service removed by stopOld).
    @Test func aControllerKilledWhileDrainingHasItsPromotionFinishedByRecovery() async throws {
        try await Playground.with(swarm: cluster) { playground in
            try playground.writePipeline(steps: "[50, 100]", wait: "3s", drain: "30s")
            let first = try await playground.run(RunOptions(overrides: ["traffic.drain=1s"]))
            let old = try #require(first.deployment?.color)
            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .draining, environment: ["EPOCHS": "12"])
            let target = try #require(try StateStore(folder: playground.statePath).run()?.target)
            try await Task.sleep(for: .seconds(1))
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let recovery = try await recover(playground)
            #expect(recovery.status == 0, "\(recovery.stderr)")
            try await Task.sleep(for: .milliseconds(300))
            await load.stop()
            let split = try #require(await playground.nginx.currentSplit())
            #expect(split.backends.map(\.color) == [target])
            #expect(split.backends.first?.addresses.count == 3)
            #expect(try await !hasService(old, in: playground), "stopOld")
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
            #expect(record.deployment?.color == target)
            #expect(load.samples.count > 20 && load.samples.allSatisfy { $0.status == 200 })
        }
    }

    /// A host lost at 50 %: node 3's engine and everything it runs killed. The upstream is
    /// rendered again without the lost tasks and no request fails (the balancer retries a refused
    /// connection on the colour's next task). With `minHealthyReplicas: 2` the release goes on
    /// with the two tasks left; with 3 it rolls back to the live colour's remaining tasks. Node 3
    /// is brought back afterwards.
    @Test(arguments: [2, 3])
    func aNodeLostAtHalfTrafficContinuesOrRollsBackAsConfigured(minHealthyReplicas: Int) async throws {
        var failure: (any Error)?
        do { try await lose3rdNodeAtHalfTraffic(minHealthyReplicas: minHealthyReplicas) } catch { failure = error }
        try await SwarmTestCluster.script(["up"])  // node 3 back, whatever happened
        if let failure { throw failure }
    }

    func lose3rdNodeAtHalfTraffic(minHealthyReplicas: Int) async throws {
        try await Playground.with(swarm: cluster) { playground in
            playground.minHealthyReplicas = minHealthyReplicas
            try playground.writePipeline(steps: "[25, 50, 100]", wait: "8s")
            let first = try await playground.run()
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
            let live = try #require(first.deployment?.color)

            let load = LoadGenerator()
            load.start(port: playground.nginxPort)
            let controller = try await playground.startController(until: .shifting, environment: ["EPOCHS": "12"]) {
                $0.weight == 50
            }
            do {
                try await SwarmTestCluster.script(["kill", "3"])
                let status = await controller.wait()
                try await Task.sleep(for: .milliseconds(300))
                await load.stop()
                #expect(status >> 8 == (minHealthyReplicas == 2 ? 0 : 1), "\(read(playground.controllerLog))")
            } catch {
                controller.signal(SIGKILL)
                _ = await controller.wait()
                await load.stop()
                throw error
            }
            let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            let lost = cluster.nodeAddresses[2]
            let split = try #require(await playground.nginx.currentSplit())
            #expect(
                !split.backends.flatMap(\.addresses).contains { $0.hasPrefix(lost + ":") },
                "the lost node is out of the upstream")
            if minHealthyReplicas == 2 {
                #expect(record.outcome == .succeeded, "\(record.failure ?? "")")
                #expect(
                    record.rollout?.events.contains { $0.detail.contains("instances moved") } == true,
                    "the record says the upstream changed")
                #expect(split.backends.map(\.color) == [record.deployment?.color ?? "?"])
                #expect(split.backends.first?.addresses.count == 2)
            } else {
                #expect(record.outcome == .rolledBack)
                #expect(record.failure?.contains("minHealthyReplicas") == true, "\(record.failure ?? "")")
                #expect(split.backends.map(\.color) == [live])
            }
            let failed = load.samples.filter { $0.status != 200 }
            #expect(load.samples.count > 100)
            #expect(failed.isEmpty, "\(failed.count) of \(load.samples.count) requests failed")
        }
    }
}
