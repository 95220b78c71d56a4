import DeploymentRuntimes
import Foundation
import HTTPTransport
import Orchestrator
import TestSupport
import Testing
import Traffic

/// Real nginx with the Lua balancer in front of two real `recengine serve` colours: traffic steps
/// go through the control socket without a reload, so keep-alive clients that never retry lose
/// nothing while weights change and colours appear and disappear.
@Suite(.serialized) struct TrafficShiftTests {
    /// A playground without Prometheus: a trained model, the colours and nginx as processes (or
    /// as containers of the engine at `dockerHost`).
    static func withColours(
        dockerHost: String? = nil, _ body: (Playground, _ model: String) async throws -> Void
    ) async throws {
        let playground = try Playground(dockerHost: dockerHost)
        do {
            try playground.writeRatings()
            try playground.useTestImages()
            let model = playground.folder + "/model"
            let train = try await runCommand(
                Playground.recengine,
                [
                    "train", "--ratings", playground.folder + "/ratings.csv", "--out", model, "--factors", "8",
                    "--epochs", "5",
                ])
            try #require(train.status == 0, "\(train.stderr)")
            try await body(playground, model)
        } catch {
            await playground.stop()
            throw error
        }
        await playground.stop()
    }

    static func split(live: ColorInstance?, target: ColorInstance?, weight: Int) -> TrafficSplit {
        var backends: [TrafficSplit.Backend] = []
        if let live, weight < 100 {
            backends.append(.init(color: live.color, address: live.address, weight: 100 - weight))
        }
        if let target, weight > 0 {
            backends.append(.init(color: target.color, address: target.address, weight: weight))
        }
        return TrafficSplit(mode: .sticky, backends: backends)
    }

    /// One applied split and when it was in force.
    struct Step {
        var target: String
        var weight: Int
        var from: UInt64
        var until: UInt64 = .max
    }

    /// A span of steps in which the target's weight only grows.
    struct Growth {
        var target: String
        var from: UInt64
        var until: UInt64 = .max
    }

    @Test func keepAliveClientsLoseNoRequestWhileReleasesAndRollbacksMoveTraffic() async throws {
        try await Self.withColours { playground, model in
            try await Self.shiftUnderLoad(playground, model: model)
        }
    }

    /// The same through the load balancer container, its control socket reached in the
    /// bind-mounted runtime folder, with the colours as containers.
    @Test(
        .enabled(
            if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
    func keepAliveClientsLoseNoRequestThroughTheLoadBalancerContainer() async throws {
        try await DockerRolloutTests.images.value
        try await Self.withColours(dockerHost: TestEngine.host) { playground, model in
            try await Self.shiftUnderLoad(playground, model: model)
        }
    }

    /// Two releases (the new colour appears, takes 25, 50, 75, 100%, the old one stops), each
    /// followed by a rollback (back to 0% from 75%, the new colour stops), under a keep-alive load.
    static func shiftUnderLoad(_ playground: Playground, model: String) async throws {
        let runtime = playground.runtime
        let nginx = playground.nginx
        var live = try await runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
        try await nginx.apply(Self.split(live: live, target: nil, weight: 0))

        let load = KeepAliveLoad(port: playground.nginxPort)
        load.start()
        var steps: [Step] = []
        var growths: [Growth] = []
        var mismatches: [String] = []
        func apply(_ split: TrafficSplit, target: String, weight: Int) async throws {
            let now = DispatchTime.now().uptimeNanoseconds
            if !steps.isEmpty { steps[steps.count - 1].until = now }
            try await nginx.apply(split)
            steps.append(Step(target: target, weight: weight, from: DispatchTime.now().uptimeNanoseconds))
            let inForce = await nginx.currentTraffic()
            if inForce?.source != .nginx || inForce?.state.split != split {
                mismatches.append("after \(target) \(weight)%: \(String(describing: inForce))")
            }
            try await load.waitForAnswers(400, minimum: .milliseconds(700), maximum: .seconds(10))
        }
        do {
            for _ in 0..<2 {
                for rollback in [false, true] {
                    let targetColor = live.color == "blue" ? "green" : "blue"
                    let target = try await runtime.deploy(
                        color: targetColor, modelDirectory: model, timeout: .seconds(30))
                    growths.append(Growth(target: targetColor, from: DispatchTime.now().uptimeNanoseconds))
                    for weight in rollback ? [25, 50, 75] : [25, 50, 75, 100] {
                        try await apply(
                            Self.split(live: live, target: target, weight: weight), target: targetColor, weight: weight)
                    }
                    growths[growths.count - 1].until = DispatchTime.now().uptimeNanoseconds
                    if rollback {
                        try await apply(Self.split(live: live, target: nil, weight: 0), target: targetColor, weight: 0)
                        try await runtime.stop(color: targetColor)
                    } else {
                        try await runtime.stop(color: live.color)
                        live = target
                    }
                }
            }
        } catch {
            _ = await load.stop()
            throw error
        }
        try await Task.sleep(for: .milliseconds(500))
        let samples = await load.stop()

        #expect(mismatches == [], "the split in force is the one applied")
        let failures = samples.filter { $0.failure != nil }
        #expect(samples.count > 2000, "the load ran (\(samples.count) requests)")
        let failed = failures.count
        #expect(
            failed == 0,
            "\(failed) of \(samples.count) requests failed: \(Dictionary(grouping: failures, by: { $0.failure ?? "" }).mapValues(\.count))"
        )

        // Each step's share of the target, from the requests sent and answered while it was in force.
        for step in steps {
            let during = samples.filter { $0.started >= step.from && $0.finished <= step.until && $0.failure == nil }
            guard during.count >= 200 else {
                Issue.record("only \(during.count) requests during \(step.target) \(step.weight)%")
                continue
            }
            let share = Double(during.filter { $0.color == step.target }.count) * 100 / Double(during.count)
            if step.weight == 0 || step.weight == 100 {
                #expect(
                    share == Double(step.weight),
                    "\(step.target) at \(step.weight)% served \(share)% of \(during.count) requests")
            } else {
                #expect(
                    abs(share - Double(step.weight)) <= 10,
                    "\(step.target) at \(step.weight)% served \(share)% of \(during.count) requests")
            }
        }

        // While the target's weight only grows, a user it has served stays on it.
        var flips: [String] = []
        for growth in growths {
            var onTarget = Set<Int>()
            for sample in samples
            where sample.started >= growth.from && sample.finished <= growth.until && sample.failure == nil {
                if sample.color == growth.target {
                    onTarget.insert(sample.user)
                } else if onTarget.contains(sample.user) {
                    flips.append("u\(sample.user) left \(growth.target) for \(sample.color ?? "?")")
                }
            }
            #expect(onTarget.count > 100, "\(growth.target) served \(onTarget.count) users while it grew")
        }
        let flipped = flips.count
        #expect(flipped == 0, "\(flipped) sticky users changed colour while the weight grew: \(flips.prefix(10))")
    }

    @Test func nginxRefusesInvalidOrOlderSplitsAndKeepsTheOneInForce() async throws {
        try await Self.withColours { playground, model in
            let nginx = playground.nginx
            let blue = try await playground.runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
            let split = Self.split(live: blue, target: nil, weight: 0)
            try await nginx.apply(split)
            let inForce = try #require(await nginx.currentTraffic())
            #expect(inForce.source == .nginx && inForce.state.split == split)
            let generation = inForce.state.generation
            let bodies = [
                "generation \(generation + 1)\nmode sticky\nbackend blue; 127.0.0.1:1 100\n",
                "generation \(generation + 1)\nmode sticky\nbackend blue localhost:80 100\n",
                "generation \(generation + 1)\nmode sticky\nbackend blue 127.0.0.1:1 60\n",
                "generation \(generation + 1)\nmode sticky\nbackend blue 127.0.0.1:1 0\n",
                "generation \(generation + 1)\nmode random\nbackend blue 127.0.0.1:1 100\n",
                "generation \(generation + 1)\nmode sticky\nbackend blue 127.0.0.1:1 100\ninclude /etc/passwd\n",
                "mode sticky\nbackend blue 127.0.0.1:1 100\n",
                "generation \(generation)\nmode sticky\nbackend green 127.0.0.1:1 100\n",
                "generation 1\nmode sticky\nbackend green 127.0.0.1:1 100\n",
            ]
            for body in bodies {
                let response = try await HTTPClient.send(
                    HTTPClient.Request(
                        method: "POST", url: "http://nginx/traffic", body: .data(Data(body.utf8)), limit: .forTests,
                        unixSocket: nginx.config.controlSocket))
                #expect(
                    [400, 409].contains(response.status),
                    "\(body): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
            }
            #expect(await nginx.currentTraffic() == inForce, "the split in force did not change")
            let publicAnswer = try await HTTPClient.get(
                "http://127.0.0.1:\(playground.nginxPort)/traffic", limit: .forTests)
            #expect(
                publicAnswer.status != 200
                    || !String(decoding: publicAnswer.body, as: UTF8.self).contains("generation"),
                "the public port has no control")
        }
    }

    /// A colour on several hosts (Swarm tasks): requests go to all of its addresses, and one
    /// whose address refuses connections (a lost host) goes to the colour's next address, so no
    /// request fails and the user stays on the colour.
    @Test func aColourWithSeveralAddressesSpreadsRequestsAndSkipsOneThatRefuses() async throws {
        try await Self.withColours { playground, model in
            let nginx = playground.nginx
            let blue = try await playground.runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
            let green = try await playground.runtime.deploy(
                color: "green", modelDirectory: model, timeout: .seconds(30))
            // One "blue" of three addresses: blue's server, green's server (answering as green), and a dead port.
            let dead = "127.0.0.1:\(try freePort())"
            try await nginx.apply(
                TrafficSplit(
                    mode: .sticky,
                    backends: [.init(color: "blue", addresses: [blue.address, green.address, dead], weight: 100)]))
            #expect(await nginx.currentSplit()?.backends.first?.addresses == [blue.address, green.address, dead])
            var colors: [String: Int] = [:]
            for user in 0..<300 {
                let answer = try await HTTPClient.get(
                    "http://127.0.0.1:\(playground.nginxPort)/recommend/u\(user)?k=3", limit: .forTests,
                    timeout: .seconds(5), headers: ["Accept: application/json"])
                #expect(answer.status == 200, "user \(user): \(answer.status)")
                let body = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any]
                colors[body?["color"] as? String ?? "?", default: 0] += 1
            }
            #expect(
                (colors["blue"] ?? 0) > 60 && (colors["green"] ?? 0) > 60, "both live addresses answered: \(colors)")
            #expect(
                read(playground.statePath + "/nginx/error.log").contains("failed"),
                "the dead address was tried and skipped")
        }
    }

    @Test func anotherConfigurationIsInstalledWithOneReloadAndThenStepsDoNotReload() async throws {
        try await Self.withColours { playground, model in
            var nginx = playground.nginx
            let blue = try await playground.runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
            // An nginx of an older orchestrate: no Lua, no control socket.
            try FileManager.default.createDirectory(
                atPath: nginx.config.runtimeFolder, withIntermediateDirectories: true)
            let old = """
                worker_processes 1;
                pid \(nginx.config.pidFile);
                events {}
                http {
                    access_log off;
                    client_body_temp_path \(nginx.config.runtimeFolder)/client_body;
                    proxy_temp_path \(nginx.config.runtimeFolder)/proxy;
                    server {
                        listen 127.0.0.1:\(playground.nginxPort);
                        location / { proxy_pass http://\(blue.address); }
                    }
                }
                """
            try old.write(toFile: nginx.configPath, atomically: true, encoding: .utf8)
            try await LocalNginx().start(configPath: nginx.configPath, config: nginx.config)
            let master = try #require(LocalNginx().masterPID(nginx.config))
            // A pid file elsewhere naming this master (a recycled pid after its own nginx was
            // killed) names no master of that configuration, and stopping it leaves this one.
            var stranger = nginx.config
            stranger.runtimeFolder = playground.folder + "/other-nginx"
            try FileManager.default.createDirectory(atPath: stranger.runtimeFolder, withIntermediateDirectories: true)
            try "\(master)\n".write(toFile: stranger.pidFile, atomically: true, encoding: .utf8)
            #expect(LocalNginx().masterPID(stranger) == nil)
            await LocalNginx().stop(config: stranger)
            #expect(LocalNginx().masterPID(nginx.config) == master, "another configuration's stop left it running")

            try await nginx.apply(Self.split(live: blue, target: nil, weight: 0))
            #expect(LocalNginx().masterPID(nginx.config) == master, "reloaded, not restarted")
            #expect(await nginx.currentTraffic()?.source == .nginx)
            #expect(
                try await HTTPClient.get("http://127.0.0.1:\(playground.nginxPort)/recommend/u1?k=3", limit: .forTests)
                    .status == 200)

            // Another listen port: a new configuration, so a reload; the split stays.
            let port = try freePort()
            nginx.config.listenPort = port
            try await nginx.apply(Self.split(live: blue, target: nil, weight: 0))
            #expect(LocalNginx().masterPID(nginx.config) == master)
            #expect(
                try await HTTPClient.get("http://127.0.0.1:\(port)/recommend/u1?k=3", limit: .forTests).status == 200)
            let configuration = try String(contentsOfFile: nginx.configPath, encoding: .utf8)
            let modified =
                try FileManager.default.attributesOfItem(atPath: nginx.configPath)[.modificationDate] as? Date

            // The same configuration: the split goes through the control socket, the file stays.
            let green = try await playground.runtime.deploy(
                color: "green", modelDirectory: model, timeout: .seconds(30))
            try await nginx.apply(Self.split(live: blue, target: green, weight: 50))
            #expect(try String(contentsOfFile: nginx.configPath, encoding: .utf8) == configuration)
            #expect(
                try FileManager.default.attributesOfItem(atPath: nginx.configPath)[.modificationDate] as? Date
                    == modified)
            #expect(await nginx.currentSplit() == Self.split(live: blue, target: green, weight: 50))
            await nginx.stop()
        }
    }

    @Test func nginxStartedAgainServesTheLastAppliedSplit() async throws {
        try await Self.withColours { playground, model in
            let nginx = playground.nginx
            let blue = try await playground.runtime.deploy(color: "blue", modelDirectory: model, timeout: .seconds(30))
            let green = try await playground.runtime.deploy(
                color: "green", modelDirectory: model, timeout: .seconds(30))
            try await nginx.apply(Self.split(live: blue, target: green, weight: 25))
            let applied = Self.split(live: blue, target: green, weight: 50)
            try await nginx.apply(applied)
            let before = try #require(await nginx.currentTraffic())

            await nginx.stop()
            let stopped = try #require(await nginx.currentTraffic())
            #expect(
                stopped.source == .stateFile && stopped.state == before.state,
                "without nginx, the state file says what was applied last")

            // Started by hand (as an operator or a service manager would), nginx loads the state file.
            try await LocalNginx().start(configPath: nginx.configPath, config: nginx.config)
            var restarted: NginxController.Report?
            for _ in 0..<100 {
                restarted = await nginx.currentTraffic()
                if restarted?.source == .nginx { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(restarted == NginxController.Report(state: before.state, source: .nginx))
            let answer = try await HTTPClient.get(
                "http://127.0.0.1:\(playground.nginxPort)/recommend/u1?k=3", limit: .forTests)
            #expect(answer.status == 200)

            // A control socket left behind by an nginx that was killed does not stop the next start.
            await nginx.stop()
            let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { bytes in
                let path = Array(nginx.config.controlSocket.utf8)
                bytes.copyBytes(from: path.prefix(bytes.count - 1))
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            close(stale)
            #expect(bound == 0 && FileManager.default.fileExists(atPath: nginx.config.controlSocket))
            try await nginx.apply(Self.split(live: blue, target: green, weight: 100))
            #expect(await nginx.currentTraffic()?.state.split == Self.split(live: blue, target: green, weight: 100))
            #expect(await nginx.currentTraffic()?.state.generation == before.state.generation + 1)
        }
    }
}
