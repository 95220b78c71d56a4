import ArgumentParser
import CommandLineSupport
import Foundation
import HTTPTransport
import RecEngine
import Synchronization

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract:
            "Replay held-out users against the load balancer: ask for recommendations, send the events they would cause.",
        discussion:
            "Runs for --duration seconds, or until SIGTERM/SIGINT (as a rollout hook); then prints its counts per colour."
    )

    @OptionGroup var input: RatingsOptions
    @Option(help: "The load balancer's base URL.") var url: String
    @Option(help: "Recommendation requests per second.") var rate = 20.0
    @Option(help: "Seconds to run (0: until stopped).") var duration = 0.0
    @Option(help: "Recommendations asked per request.") var k = 20
    @Option(help: "Seed of the user sequence.") var seed: UInt64 = 1
    @Option(
        help: ArgumentHelp(
            "Also write each user's counts to this JSON file at the end (per colour and per team).",
            valueName: "file"))
    var users: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard rate > 0, rate <= 10_000 else { throw ValidationError("--rate must be above 0 and at most 10000") }
        guard duration >= 0 && duration <= 86_400 * 365 else {
            throw ValidationError("--duration must be from 0 to a year (31536000 seconds)")
        }
        guard (1...100).contains(k) else { throw ValidationError("--k must be from 1 to 100") }
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("--url must be an http:// or https:// URL")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let heldOut = try input.load()
            let simulator = TrafficSimulator(
                heldOut: heldOut.ratings,
                configuration: .init(
                    baseURL: url.hasSuffix("/") ? String(url.dropLast()) : url, rate: rate,
                    duration: duration > 0 ? .milliseconds(Int64(duration * 1000)) : nil, count: k, seed: seed,
                    recordUsers: users != nil))
            let stop = StopFlag()
            // A recommendation of at most 100 ids, or the answer to a batch of events.
            let limit = HTTPClient.BodyLimit(
                1 << 20, for: "an answer of the inference server",
                hint: "is --url the inference server (or nginx in front of it)?")
            var report = await simulator.run(
                transport: { url, body in
                    let response =
                        if let body {
                            try await HTTPClient.post(
                                url, body: body, limit: limit, timeout: .seconds(5),
                                headers: ["Content-Type: application/json"])
                        } else {
                            try await HTTPClient.get(
                                url, limit: limit, timeout: .seconds(5), headers: ["Accept: application/json"])
                        }
                    return (response.status, response.body)
                },
                shouldStop: { stop.isSet })
            if let users {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .sortedKeys
                try encoder.encode(report.users ?? [:]).write(to: URL(fileURLWithPath: users), options: .atomic)
            }
            report.users = nil
            if output.output == .json {
                try printJSON(report)
            } else {
                print("\(report.requests) requests in \(format(report.seconds, 1)) s, \(report.errors) errors")
                for (color, counts) in report.colors.sorted(by: { $0.key < $1.key }) {
                    let rate = counts.recommended == 0 ? 0 : Double(counts.conversions) / Double(counts.recommended)
                    print(
                        "  \(color): \(counts.requests) requests, \(counts.recommended) recommended, \(counts.events) events, \(counts.conversions) conversions (engagement \(format(rate)))"
                    )
                }
            }
        }
    }
}

/// Set by SIGTERM or SIGINT, so that a stopped simulation still reports its counts.
// @unchecked: `sources` is written once in init and only kept alive afterwards; the flag is atomic.
final class StopFlag: @unchecked Sendable {
    private final class Flag: Sendable {
        let value = Atomic<Bool>(false)
    }

    private let flag = Flag()
    /// Kept for the flag's lifetime; dispatch sources are thread-safe.
    private let sources: [any DispatchSourceSignal]

    init() {
        let flag = self.flag
        sources = [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler { flag.value.store(true, ordering: .relaxed) }
            source.resume()
            return source
        }
    }

    var isSet: Bool { flag.value.load(ordering: .relaxed) }
}
