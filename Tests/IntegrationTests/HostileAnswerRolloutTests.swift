import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import Provenance
import TestSupport
import Testing
import Traffic

/// A hostile answer in the middle of a real rollout (issue 20, item 1): a hostile HTTP server
/// stands in for Prometheus at the second release's 25 % step; the controller, a child process
/// as in production, must fail the gate, roll back with traffic on the live colour, record it,
/// and stay within 200 MB whatever the answer.
@Suite(.serialized) struct HostileAnswerRolloutTests {
    enum Hostility: String, CaseIterable, Sendable {
        /// A gate query that forgot its sum(...): 1.4 million series, about 100 MB.
        case manySeries
        /// An answer without end.
        case endless
        /// A byte every 100 ms: only the query's deadline (10 s) ends it.
        case drip
        /// An error text of 850 KB full of terminal escape sequences (items 9 and 10).
        case escapes

        var answer: @Sendable (String) -> HostileHTTPServer.Answer {
            switch self {
            case .manySeries:
                return { path in
                    if path.hasPrefix("/-/ready") {
                        return .body(status: 200, contentType: "text/plain", Data("Prometheus is Ready.\n".utf8))
                    }
                    return path.contains("query=count%28%28")
                        ? .prometheusValue("1400000") : .prometheusVector(series: 1_400_000)
                }
            case .endless:
                return { path in
                    path.hasPrefix("/-/ready")
                        ? .body(status: 200, contentType: "text/plain", Data("Prometheus is Ready.\n".utf8))
                        : .endless()
                }
            case .drip:
                return { path in
                    path.hasPrefix("/-/ready")
                        ? .body(status: 200, contentType: "text/plain", Data("Prometheus is Ready.\n".utf8))
                        : .stream(status: 200, pause: .milliseconds(100)) { _ in Data(" ".utf8) }
                }
            case .escapes:
                let text = String(repeating: "\u{1B}[2J\u{1B}]0;owned\u{7}bad ", count: 25_000)
                let body =
                    (try? JSONSerialization.data(withJSONObject: [
                        "status": "error", "errorType": "bad_data", "error": text,
                    ])) ?? Data()
                return { path in
                    path.hasPrefix("/-/ready")
                        ? .body(status: 200, contentType: "text/plain", Data("Prometheus is Ready.\n".utf8))
                        : .body(status: 400, body)
                }
            }
        }

        /// What the release's failure says.
        var failure: String {
            switch self {
            case .manySeries: "the query returned 1400000 series; a gate needs one: wrap it in sum(...)"
            case .endless: "larger than 1 MiB, the limit for the answer to a gate's query"
            case .drip: "3 query errors in a row: Prometheus did not answer in time"
            case .escapes: "Prometheus answered HTTP 400, bad_data: \\u{1b}[2J\\u{1b}]0;owned\\u{7}bad"
            }
        }
    }

    static let gate = """
                - name: hostile
                  query: up
                  max: 1
                  initialDelay: 1s
                  interval: 1s
                  consecutiveErrorLimit: 2
        """

    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }

    @Test(arguments: Hostility.allCases)
    func aHostilePrometheusMidStepFailsTheGateAndTrafficGoesBackToTheLiveColour(hostility: Hostility) async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run(FaultTests.quick)
            let live = try #require(first.deployment?.color)
            try await HostileHTTPServer.with(hostility.answer) { server in
                try playground.writePipeline(gates: Self.gate, wait: "60s", prometheusPort: server.port)
                let load = LoadGenerator()
                load.start(port: playground.nginxPort)
                let started = ContinuousClock.now
                let controller = try ChildProcess.spawn(
                    Playground.orchestrate, ["run", playground.pipelinePath, "--force"],
                    environment: ["RECENGINE_BIN": Playground.recengine, "EPOCHS": "12"],
                    log: playground.controllerLog, measuringPeakMemory: true)
                // When all traffic is back on the live colour, as nginx says (polled while the controller runs).
                let watch = Task.detached { () -> Date? in
                    var shifted = false
                    while !Task.isCancelled {
                        let colors = await playground.nginx.currentSplit()?.backends.map(\.color)
                        if colors?.count ?? 0 > 1 { shifted = true }
                        if shifted && colors == [live] { return Date() }
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                    return nil
                }
                let (status, peakBytes) = await controller.waitMeasuringMemory()
                let peakKiB = peakBytes / 1024
                let took = ContinuousClock.now - started
                watch.cancel()
                let restoredAt = await watch.value
                try await Task.sleep(for: .milliseconds(300))
                await load.stop()
                let log = (try? String(contentsOfFile: playground.controllerLog, encoding: .utf8)) ?? ""
                #expect(status >> 8 == 1, "rolled back: exit 1, got \(status >> 8): \(log.suffix(2000))")
                #expect(
                    await playground.nginx.currentSplit()?.backends.map(\.color) == [live],
                    "all traffic on the live colour")

                let record = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
                #expect(record.outcome == .rolledBack, "\(record.outcome)")
                #expect(record.failure?.contains(hostility.failure) == true, "\(record.failure ?? "")")
                let firstQuery = try #require(server.requests.first { $0.path.hasPrefix("/api/v1/query") }?.at)
                let failed = load.samples.filter { $0.status != 200 }.count
                // The figures for Benchmarks/faults.
                print(
                    "hostile Prometheus \(hostility.rawValue): exit \(status >> 8), peak \(peakKiB / 1024) MiB, \(failed) of \(load.samples.count) requests failed, "
                        + "all traffic on \(live) \(restoredAt.map { String(format: "%.2f", $0.timeIntervalSince(firstQuery)) } ?? "-") s after the first hostile answer, run \(took)"
                )
                #expect(failed == 0, "no failed request")
                #expect(peakKiB < 200 * 1024, "the controller's peak memory: \(peakKiB) KiB")

                // Text from outside is cut and escaped in the record and wherever it is shown.
                let line = try #require(try ReleaseHistory(path: playground.historyPath).lines().last)
                #expect(line.bytes.count < 200_000, "the history line is \(line.bytes.count) bytes")
                #expect(!String(decoding: line.bytes, as: UTF8.self).contains("\\u001b"), "no escape sequence recorded")
                #expect(!log.contains("\u{1B}"), "no escape sequence on stderr")
                let explain = try await orchestrate(["explain", "--last", "--pipeline", playground.pipelinePath])
                #expect(explain.status == 0 && !explain.stdout.contains("\u{1B}"), "\(explain)")
                let report = try await orchestrate([
                    "report", "--last", "--pipeline", playground.pipelinePath, "--out", playground.folder + "/report",
                ])
                #expect(report.status == 0, "\(report.stderr)")
                let markdown = try String(contentsOfFile: playground.folder + "/report/report.md", encoding: .utf8)
                #expect(!markdown.contains("\u{1B}"))
                #expect(
                    try FileManager.default.attributesOfItem(atPath: playground.folder + "/report/report.md")[.size]
                        as? Int ?? 0 < 500_000)
            }
        }
    }

    /// A record written before text was escaped (or edited by hand) is shown escaped by every
    /// command that prints it.
    @Test func escapeSequencesInARecordReachNoTerminalAndNoReport() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            var record = try await playground.run(FaultTests.quick)
            let hostile = "\u{1B}]0;owned\u{7}\u{1B}[2J\u{9B}31m\u{202E}evil"
            record.releaseID += "-x"
            record.failure = hostile + "\nsecond line"
            let measured = GateMeasurement(
                outcome: "error", gate: "g", query: "q", value: nil, condition: "<= 1", at: Date(), error: hostile)
            record.rollout?.steps[0].measurements.append(measured)
            record.rollout?.events.append(RolloutEvent(at: Date(), kind: .rollback, detail: hostile))
            record.stages[0].metrics[hostile] = 1
            _ = try ReleaseHistory(path: playground.historyPath).append(record)
            for command in [
                ["history", "--pipeline", playground.pipelinePath],
                ["explain", "--last", "--pipeline", playground.pipelinePath],
                ["report", "--last", "--pipeline", playground.pipelinePath, "--out", playground.folder + "/report"],
            ] {
                let result = try await orchestrate(command)
                #expect(result.status == 0, "\(command): \(result.stderr)")
                for output in [result.stdout, result.stderr] {
                    #expect(
                        !output.unicodeScalars.contains {
                            $0 == "\u{1B}" || $0 == "\u{7}" || $0 == "\u{9B}" || $0 == "\u{202E}"
                        }, "\(command): \(output)")
                }
            }
            let explain = try await orchestrate(["explain", "--last", "--pipeline", playground.pipelinePath])
            #expect(
                explain.stdout.contains("\\u{1b}]0;owned\\u{7}\\u{1b}[2J\\u{9b}31m\\u{202e}evil"),
                "shown, written out: \(explain.stdout)")
            for file in ["report.md", "report.html"] {
                let text = try String(contentsOfFile: playground.folder + "/report/" + file, encoding: .utf8)
                #expect(
                    !text.unicodeScalars.contains {
                        $0 == "\u{1B}" || $0 == "\u{7}" || $0 == "\u{9B}" || $0 == "\u{202E}"
                    }, "\(file)")
            }
        }
    }

    /// `compose ps` against an engine whose list of containers never ends (issue 20, item 1).
    @Test func composePsAgainstAnEngineThatAnswersWithoutEndExits4WithinTheMemoryBound() async throws {
        let version = #"{"ApiVersion":"1.41","Version":"hostile"}"#
        try await HostileHTTPServer.with({ path in
            path.hasSuffix("/version") ? .json(version) : .endless(byte: UInt8(ascii: "["))
        }) { server in
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                "hostile-engine-\(UUID().uuidString)"
            ).path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try "name: hostile\nservices: {}\n".write(
                toFile: folder + "/compose.yml", atomically: true, encoding: .utf8)
            let controller = try ChildProcess.spawn(
                Playground.orchestrate,
                ["compose", "ps", folder + "/compose.yml", "--host", "tcp://127.0.0.1:\(server.port)"],
                log: folder + "/out.log",
                measuringPeakMemory: true)
            let (status, peakBytes) = await controller.waitMeasuringMemory()
            let peakKiB = peakBytes / 1024
            let output = (try? String(contentsOfFile: folder + "/out.log", encoding: .utf8)) ?? ""
            print("compose ps against an endless engine: exit \(status >> 8), peak \(peakKiB / 1024) MiB")
            #expect(status & 0x7f == 0, "exited, not killed by a signal: \(status)")
            #expect(status >> 8 == 4, "\(output)")
            #expect(output.contains("listing containers: the Docker engine's answer was cut off"), "\(output)")
            #expect(output.contains("larger than 4 MiB, the limit for a list of the Docker Engine API"), "\(output)")
            #expect(peakKiB < 200 * 1024, "\(peakKiB) KiB")
        }
    }
}
