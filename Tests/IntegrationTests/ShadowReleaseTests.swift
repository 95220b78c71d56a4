import Foundation
import HTTPTransport
import Orchestrator
import Provenance
import RecEngine
import TestSupport
import Testing
import Traffic

/// The shadow stage for real: nginx with the Lua shadow, two `recengine serve` colours, and a
/// steady load through nginx (the playground's `LoadGenerator`, which keeps every answer's status
/// and `color`: what the clients saw). A healthy candidate passes the stage and goes on to its
/// steps; a candidate whose lists are random fails it with an RBO near 0 before step 1, and no
/// client was ever answered by it; a shadow colour 500 ms late fails no live request (and, serving
/// only the most rated movies, fails the popularity gate).
@Suite(.serialized) struct ShadowReleaseTests {
    static func pipeline(
        _ playground: Playground, args: String = "[]", shadow: String, train: String = "factors: 8, epochs: 10",
        extra: String = ""
    ) -> String {
        """
        version: 1
        name: svc
        history: releases/history.jsonl
        stages:
          - name: train
            uses: train
            with: {ratings: ratings.csv, model: models/m, \(train)}
        deploy:
          runtime: \(playground.dockerHost == nil ? "process" : "docker")
          service: \(playground.service)
          args: \(args)
        \(playground.dockerHost.map { "  docker: {host: \"\($0)\", compose: \(playground.composePath)}" } ?? "")
          health: {path: /health, timeout: 20s}
        traffic:
          nginx: {config: releases/state/\(playground.service)/nginx.conf, listen: \(playground.nginxPort)}
          mode: sticky
          steps: [50, 100]
          wait: 2s
          stopOld: true
          drain: 1s
          shadow: \(shadow)
        \(extra)

        """
    }

    static let gates =
        "{share: 50, duration: 60s, requests: 40, gates: {rbo: {min: 0.5}, overlap: {min: 0.3}, errors: {max: 0.05}, "
        + "coverage: {min: 0.5}, popularity: {max: 1.5}}}"

    /// The first release (nothing live: no shadow stage); its colour.
    static func firstRelease(_ playground: Playground, train: String = "factors: 8, epochs: 10") async throws -> String
    {
        try Self.pipeline(playground, shadow: Self.gates, train: train).write(
            toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
        let first = try await playground.run()
        #expect(first.outcome == .succeeded, "\(first.failure ?? "")")
        #expect(first.rollout?.shadow == nil, "nothing live to compare with")
        return try #require(first.deployment?.color)
    }

    @Test func aHealthyCandidatePassesTheShadowStageAndGoesOn() async throws {
        try await Playground.with { playground in
            let live = try await Self.firstRelease(playground)
            let dryRun = try await runCommand(
                Playground.orchestrate, ["run", playground.pipelinePath, "--dry-run", "--force"],
                environment: ["RECENGINE_BIN": Playground.recengine])
            #expect(dryRun.status == 0, "\(dryRun.stderr)")
            #expect(dryRun.stdout.contains("shadow stage (before step 1"), "\(dryRun.stdout)")
            #expect(dryRun.stdout.contains("gate rbo: mean rank-biased overlap (p = 0.9) >= 0.5"), "\(dryRun.stdout)")
            #expect(dryRun.stdout.contains("gate popularity: share of "), "\(dryRun.stdout)")

            // The same data and seed: the same lists.
            let second = try await playground.run(RunOptions(force: true))
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let shadow = try #require(second.rollout?.shadow)
            #expect(shadow.passed, "\(shadow.verdict)")
            #expect(shadow.compared >= 40 && (shadow.meanRBO ?? 0) > 0.95, "\(shadow.verdict)")
            #expect(shadow.rboHistogram[9] >= 40)
            #expect(shadow.gates.map(\.name) == ["rbo", "overlap", "coverage", "popularity", "errors"])
            #expect(second.rollout?.steps.map(\.weight) == [50, 100])
            #expect(second.rollout?.steps.first.map { $0.startedOn >= shadow.finishedOn } == true)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) != [live], "promoted")
            #expect(await playground.nginx.currentSplit()?.shadow == nil)
        }
    }

    @Test func aCandidateWithRandomListsFailsBeforeAnyUserSawIt() async throws {
        try await Playground.with { playground in try await Self.randomListsFail(playground) }
    }

    /// A candidate whose every id is random fails the shadow stage with RBO near 0, before step 1;
    /// every client answer came from the live colour.
    static func randomListsFail(_ playground: Playground) async throws {
        let live = try await Self.firstRelease(playground)
        // Every id of every answer of the new colour replaced by a random movie: its serve
        // arguments, or under Docker its command in the compose file (which decides it there).
        try Self.pipeline(playground, args: #"[--fault-random-share, "1"]"#, shadow: Self.gates).write(
            toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
        if playground.dockerHost != nil {
            let target = live == "blue" ? "green" : "blue"
            let compose = try String(contentsOfFile: playground.composePath, encoding: .utf8)
            let faulty = compose.replacingOccurrences(
                of: "--color, \(target),", with: "--color, \(target), --fault-random-share, \"1\",")
            try #require(faulty != compose, "the compose file names the colour \(target)")
            try faulty.write(toFile: playground.composePath, atomically: true, encoding: .utf8)
        }
        let second = try await playground.run(RunOptions(force: true))
        #expect(second.outcome == .rolledBack, "\(second.failure ?? "")")
        #expect(second.failure?.hasPrefix("shadow stage: rbo") == true, "\(second.failure ?? "")")
        #expect(second.rollout?.steps.isEmpty == true, "no step was ever put in force")
        let shadow = try #require(second.rollout?.shadow)
        #expect(!shadow.passed && shadow.compared >= 40)
        #expect((shadow.meanRBO ?? 1) < 0.15, "RBO near 0: \(shadow.verdict)")
        #expect(shadow.samples.first.map { $0.liveItems != $0.newItems } == true)

        // At the client: every answer came from the live colour, none failed.
        let samples = playground.lastSamples
        #expect(samples.count > 100)
        #expect(samples.allSatisfy { $0.status == 200 && $0.color == live }, "\(Self.summary(samples))")
        let split = try #require(await playground.nginx.currentSplit())
        #expect(split.backends.map(\.color) == [live] && split.shadow == nil)

        let explain = try await runCommand(
            Playground.orchestrate, ["explain", second.releaseID, "--pipeline", playground.pipelinePath])
        #expect(explain.status == 0, "\(explain.stderr)")
        #expect(explain.stdout.contains("shadow stage (before step 1"), "\(explain.stdout)")
        #expect(explain.stdout.contains("users whose lists changed most:"), "\(explain.stdout)")
        #expect(explain.stdout.contains("    0.0-0.1 #"), "\(explain.stdout)")
    }

    /// Ratings with tastes: user u watches mostly the movies of its group (movie i with
    /// i % 4 == u % 4: 12 of them and 3 others) and rates them 5 (the others 2), so that a model
    /// learns lists that differ by user (the playground's own ratings have no taste in them: every
    /// user gets about the same list).
    static func tasteRatings() -> String {
        var generator = SeededGenerator(seed: 23)
        var text = "user_id,movie_id,rating\n"
        for user in 0..<120 {
            var chosen = Set<Int>()
            while chosen.count < 12 { chosen.insert(generator.nextIndex(below: 20) * 4 + user % 4) }
            while chosen.count < 15 { chosen.insert(generator.nextIndex(below: 80)) }
            for movie in chosen.sorted() { text += "u\(user),m\(movie),\(movie % 4 == user % 4 ? 5 : 2)\n" }
        }
        return text
    }

    /// The same run checks the popularity gate: the new colour also answers everyone with the most
    /// rated movies (a popularity collapse), on a load of the users the model knows, trained on
    /// ratings with tastes (the live lists are personalised); and `rollback.automatic: false`: the
    /// failed stage holds at 0 % until `orchestrate abort`, which rolls back and exits 1.
    @Test func aSlowShadowColourFailsNoLiveRequest() async throws {
        try await Playground.with { playground in
            try Self.tasteRatings().write(toFile: playground.folder + "/ratings.csv", atomically: true, encoding: .utf8)
            let live = try await Self.firstRelease(playground, train: "algorithm: ease")
            // Every answer of the new colour 500 ms late and the 5 most rated movies, every request
            // shadowed.
            try Self.pipeline(
                playground,
                args: #"[--fault-latency-ms, "500", --fault-latency-share, "1", --fault-popular-share, "1"]"#,
                shadow:
                    "{share: 100, duration: 8s, gates: {popularity: {max: 1.5}, p95_latency_ratio: {max: 3}}}",
                train: "algorithm: ease", extra: "rollback: {automatic: false}"
            ).write(toFile: playground.pipelinePath, atomically: true, encoding: .utf8)
            // Under rollback.automatic: false the failed stage holds (in another process, so that
            // the test can abort it): no user on the new colour, nginx still shadowing.
            let load = LoadGenerator()
            load.start(port: playground.nginxPort, users: 120)
            let controller = try ChildProcess.spawn(
                Playground.orchestrate, ["run", playground.pipelinePath, "--force"],
                environment: ["RECENGINE_BIN": Playground.recengine], log: playground.controllerLog)
            let state = StateStore(folder: playground.statePath)
            var held: RunState?
            var started = false
            for _ in 0..<1800 where held == nil {
                let run = (try? state.run()) ?? nil
                if run?.phase == .holding { held = run }
                if run != nil { started = true } else if started { break }  // it ended without holding
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(
                held?.weight == 0, "\((try? String(contentsOfFile: playground.controllerLog, encoding: .utf8)) ?? "")")
            let holding = await playground.nginx.currentSplit()
            #expect(holding?.backends.first { $0.color == live }?.weight == 100)
            #expect(holding?.shadow != nil, "the held split goes on shadowing")
            let abort = try await runCommand(
                Playground.orchestrate, ["abort", playground.pipelinePath],
                environment: ["RECENGINE_BIN": Playground.recengine])
            #expect(abort.status == 0, "\(abort.stderr)")
            let status = await controller.wait()
            await load.stop()
            #expect(status >> 8 == 1, "an aborted release exits 1")
            let second = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(
                second.outcome == .rolledBack && second.failure?.contains("aborted by orchestrate abort") == true,
                "\(second.failure ?? "")")
            #expect(second.rollout?.steps.isEmpty == true, "no step was ever put in force")
            #expect(second.rollout?.events.contains { $0.kind == .hold } == true)
            let shadow = try #require(second.rollout?.shadow)
            #expect(shadow.verdict.hasPrefix("shadow stage: popularity"), "\(shadow.verdict)")
            #expect(shadow.gates.map(\.name) == ["popularity", "p95_latency_ratio"])
            #expect(
                shadow.gates.allSatisfy { !$0.passed },
                "\(shadow.gates) live \(shadow.live) new \(shadow.new) \(shadow.samples.prefix(3))")
            #expect(shadow.new.distinct == 5 && shadow.new.top10Share == 1, "\(shadow.new)")
            #expect(shadow.live.distinct > 10, "personalised live lists: \(shadow.live)")
            #expect((shadow.newP95 ?? 0) >= 450, "\(shadow.verdict)")
            let samples = load.samples
            #expect(samples.count > 100)
            #expect(samples.allSatisfy { $0.status == 200 && $0.color == live }, "\(Self.summary(samples))")
            let split = await playground.nginx.currentSplit()
            #expect(split?.backends.map(\.color) == [live] && split?.shadow == nil)
        }
    }

    static func summary(_ samples: [LoadGenerator.Sample]) -> String {
        Dictionary(grouping: samples, by: { "\($0.status) \($0.color ?? "-")" }).mapValues(\.count).description
    }

    // MARK: The comparison's arithmetic, in nginx

    /// A location on the control socket that runs nginx's own `rbo` and `overlap` on `a|b` lines:
    /// only in this test's configuration.
    static let rboLocation = """
                location = /test/rbo {
                    content_by_lua_block {
                        ngx.req.read_body()
                        local function list(text)
                            local items = {}
                            for item in text:gmatch("[^,]+") do
                                items[#items + 1] = item
                            end
                            return items
                        end
                        local out = {}
                        for line in ngx.req.get_body_data():gmatch("[^\\n]+") do
                            local a, b = line:match("^([^|]*)|([^|]*)$")
                            a, b = list(a), list(b)
                            out[#out + 1] = string.format("%.6f %.6f", orchestrate_shadow.rbo(a, b), orchestrate_shadow.overlap(a, b))
                        end
                        ngx.print(table.concat(out, "\\n") .. "\\n")
                    }
                }


        """

    /// Rank-biased overlap by its definition (Webber et al. 2010, eq. 32), summing set
    /// intersections depth by depth: the reference for random lists.
    static let reference = """
        import sys
        def rbo(a, b, p=0.9):
            s, l = (a, b) if len(a) <= len(b) else (b, a)
            if not l: return 1.0
            if not s: return 0.0
            S, L = len(s), len(l)
            x = lambda d: len(set(s[:d]) & set(l[:d]))
            xs, xl = x(S), x(L)
            total = sum(x(d) / d * p ** d for d in range(1, L + 1))
            total += sum(xs * (d - S) / (S * d) * p ** d for d in range(S + 1, L + 1))
            return (1 - p) / p * total + ((xl - xs) / L + xs / S) * p ** L
        for line in open(sys.argv[1]):
            a, b = line.rstrip("\\n").split("|")
            print("%.6f" % rbo([i for i in a.split(",") if i], [i for i in b.split(",") if i]))
        """

    /// A shadow colour that refuses connections is not asked again for a second (per nginx
    /// worker): the requests sampled meanwhile count as errors, `skipped`, without a body copy, a
    /// timer or a connect each (Benchmarks/shadow: a dead colour at a 100 % share cost a fifth of
    /// live throughput before).
    @Test func aShadowColourThatIsDownIsNotAskedOverAndOver() async throws {
        let folder = "/tmp/shadow-down-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try await WebhookReceiver.with(.answer(200)) { live in
            let listen = try freePort()
            let nginx = NginxController(
                config: NginxConfig(listenPort: listen, runtimeFolder: folder + "/nginx"),
                configPath: folder + "/nginx.conf")
            do {
                try await nginx.apply(
                    TrafficSplit(
                        mode: .sticky,
                        backends: [
                            .init(color: "blue", address: "127.0.0.1:\(live.port)", weight: 100),
                            .init(color: "green", address: "127.0.0.1:\(try freePort())", weight: 0),
                        ], shadow: .init(color: "green", percent: 100, experiment: "down-1")))
                for user in 0..<60 {
                    let answer = try await HTTPClient.get(
                        "http://127.0.0.1:\(listen)/recommend/u\(user)", limit: .forTests, timeout: .seconds(5))
                    #expect(answer.status == 200, "a dead shadow colour fails no live request")
                }
                var counts = try await nginx.shadow()
                for _ in 0..<50 where (counts?.errors ?? 0) < 60 {
                    try await Task.sleep(for: .milliseconds(100))
                    counts = try await nginx.shadow()
                }
                let seen = try #require(counts)
                #expect(seen.sampled == 60 && seen.errors == 60 && seen.compared == 0, "\(seen)")
                // Each worker asks once a second at most; 60 requests take far less than 30 s.
                #expect(seen.skipped >= 30, "\(seen.skipped) of 60 skipped")
            } catch {
                await nginx.stop()
                throw error
            }
            await nginx.stop()
        }
    }

    @Test func rankBiasedOverlapAndOverlapMatchHandComputedValues() async throws {
        let folder = "/tmp/shadow-rbo-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let template = NginxConfig.defaultTemplate.replacingOccurrences(
            of: "        location = /shadow {", with: Self.rboLocation + "        location = /shadow {")
        let nginx = NginxController(
            config: NginxConfig(template: template, listenPort: try freePort(), runtimeFolder: folder + "/nginx"),
            configPath: folder + "/nginx.conf")
        do {
            try await nginx.apply(
                TrafficSplit(mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 100)]))
            // By hand, p = 0.9: RBO = (1-p)/p · Σ_d X_d/d · p^d + X_k/k · p^k for lists of length k.
            let known: [(input: String, rbo: Double, overlap: Double)] = [
                ("a,b,c|a,b,c", 1, 1),
                ("a,b,c|d,e,f", 0, 0),
                // X = 0, 2: (0.1/0.9)(0.81) + 0.81 = 0.9.
                ("a,b|b,a", 0.9, 1),
                // X = 1, 1, 3: (0.1/0.9)(0.9 + 0.405 + 0.729) + 0.729 = 0.955.
                ("a,b,c|a,c,b", 0.955, 1),
                // X = 0, 2, 2, 4: (0.1/0.9)(0.81 + 0.486 + 0.6561) + 0.6561 = 0.8730.
                ("a,b,c,d|b,a,d,c", 0.873, 1),
                // One list the other's beginning: the same ranking as far as it goes.
                ("a|a,b", 1, 0.5),
                ("a,b,c,d|a,x,y,z", 0.1 / 0.9 * (0.9 + 0.405 + 0.243 + 0.164025) + 0.25 * 0.6561, 0.25),
                ("|", 1, 1),
                ("|a", 0, 0),
            ]
            let random = (0..<200).map { _ -> String in
                let catalogue = (0..<12).map { "m\($0)" }
                let a = catalogue.shuffled().prefix(Int.random(in: 0...8))
                let b = catalogue.shuffled().prefix(Int.random(in: 0...8))
                return a.joined(separator: ",") + "|" + b.joined(separator: ",")
            }
            let cases = known.map(\.input) + random
            let answer = try await HTTPClient.send(
                HTTPClient.Request(
                    method: "POST", url: "http://nginx/test/rbo", body: .data(Data(cases.joined(separator: "\n").utf8)),
                    timeout: .seconds(5), limit: .forTests, unixSocket: nginx.config.controlSocket))
            let lines = String(decoding: answer.body, as: UTF8.self).split(separator: "\n").map {
                $0.split(separator: " ").compactMap { Double($0) }
            }
            try #require(lines.count == cases.count, "\(String(decoding: answer.body, as: UTF8.self))")
            for (index, expected) in known.enumerated() {
                #expect(abs(lines[index][0] - expected.rbo) < 0.0005, "RBO of \(expected.input): \(lines[index][0])")
                #expect(abs(lines[index][1] - expected.overlap) < 1e-6, "overlap of \(expected.input)")
            }
            try cases.joined(separator: "\n").write(toFile: folder + "/cases.txt", atomically: true, encoding: .utf8)
            try Self.reference.write(toFile: folder + "/rbo.py", atomically: true, encoding: .utf8)
            let python = try await runCommand("/usr/bin/env", ["python3", folder + "/rbo.py", folder + "/cases.txt"])
            try #require(python.status == 0, "\(python.stderr)")
            let reference = python.stdout.split(separator: "\n").compactMap { Double($0) }
            try #require(reference.count == cases.count)
            for index in cases.indices {
                #expect(abs(lines[index][0] - reference[index]) < 1e-5, "\(cases[index])")
            }
        } catch {
            await nginx.stop()
            throw error
        }
        await nginx.stop()
    }
}

/// The shadow stage under the Docker runtime: nginx in its container asks the new colour's
/// container for the shadowed requests, as its balancer does for the split.
@Suite(
    .serialized,
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct DockerShadowReleaseTests {
    @Test func aCandidateWithRandomListsFailsInTheContainers() async throws {
        try await DockerRolloutTests.images.value
        try await Playground.with(dockerHost: TestEngine.host) { playground in
            try await ShadowReleaseTests.randomListsFail(playground)
        }
    }
}
