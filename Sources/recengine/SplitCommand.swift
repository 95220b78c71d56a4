import ArgumentParser
import CommandLineSupport
import RecEngine
import RecEngineContract

struct SplitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split", abstract: "Split ratings into a training and a test file: a random hold-out, or by time.",
        discussion: """
            --mode temporal splits by the ratings' timestamps: --future-share reserves the newest share \
            of all ratings (written to --future: the online experiment replays it, no model trains on \
            it); of the rest, each user's last --last-n ratings go to the test file, or with --last-n 0 \
            the newest --test-size of them.
            """)

    @OptionGroup var input: RatingsOptions
    @Option(help: "Share of ratings for the test file, between 0 and 1.") var testSize = 0.2
    @Option(help: "Seed of the shuffle; the same seed gives the same split.") var seed: UInt64 = 42
    @Option(help: "Training file to write (CSV).") var train: String
    @Option(help: "Test file to write (CSV).") var test: String
    @Option(help: "random (a shuffled hold-out) or temporal (by the ratings' timestamps).") var mode: Mode = .random
    @Option(help: "temporal: each user's last N ratings are the test side (0: the newest --test-size of all).")
    var lastN = 0
    @Option(
        help: "temporal: the newest share of all ratings, reserved for the online experiment (written to --future).")
    var futureShare = 0.0
    @Option(help: "temporal: the file the reserved newest ratings go to.") var future: String?

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case random, temporal
    }
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var train: Int
        var test: Int
        var future: Int
        var skippedRows: Int
        var format: RatingsFormat
        var sha256: String

        enum CodingKeys: String, CodingKey {
            case train, test, future, format, sha256
            case skippedRows = "skipped_rows"
        }
    }

    func ratings() -> String { input.ratings }

    func run() async throws {
        try await reportingErrors {
            let file = try input.load()
            let split: (train: [Int], test: [Int], future: [Int])
            switch mode {
            case .random:
                guard lastN == 0, futureShare == 0, future == nil else {
                    throw RecEngineError(
                        .invalidArgument, "--last-n, --future-share and --future go with --mode temporal")
                }
                let holdout = try Split.holdout(count: file.ratings.count, testSize: testSize, seed: seed)
                split = (holdout.train, holdout.test, [])
            case .temporal:
                guard (futureShare > 0) == (future != nil) else {
                    throw RecEngineError(.invalidArgument, "--future-share and --future go together")
                }
                let times = try (file.ratings.timestamps ?? []).enumerated().map { row, text -> Double in
                    guard let time = Split.time(of: text) else {
                        throw RecEngineError(
                            .invalidArgument,
                            "row \(row + 1) has no usable timestamp (\"\(text)\"): a temporal split needs one on every rating",
                            location: ratings(), hint: "Unix seconds or an ISO 8601 time such as 2022-03-18T05:53:29")
                    }
                    return time
                }
                guard times.count == file.ratings.count else {
                    throw RecEngineError(
                        .invalidArgument, "the ratings have no timestamp column: a temporal split needs one",
                        location: ratings())
                }
                split = try Split.temporal(
                    times: times, users: file.ratings.users, testSize: testSize, lastN: lastN, futureShare: futureShare)
            }
            try RatingsFile.writeCSV(file.ratings.subset(split.train), to: train)
            try RatingsFile.writeCSV(file.ratings.subset(split.test), to: test)
            if let future { try RatingsFile.writeCSV(file.ratings.subset(split.future), to: future) }
            let report = Report(
                train: split.train.count, test: split.test.count, future: split.future.count,
                skippedRows: file.skippedRowCount,
                format: file.format, sha256: file.sha256)
            if output.output == .json {
                try printJSON(
                    report,
                    metrics: [
                        SplitMetric.trainRatings.rawValue: Double(split.train.count),
                        SplitMetric.testRatings.rawValue: Double(split.test.count),
                        SplitMetric.futureRatings.rawValue: Double(split.future.count),
                    ])
            } else {
                print(
                    "split \(file.ratings.count) ratings (\(file.format.rawValue), \(mode.rawValue)): \(split.train.count) -> \(train), \(split.test.count) -> \(test)\(future.map { ", \(split.future.count) -> \($0)" } ?? "")"
                )
                if file.skippedRowCount > 0 {
                    print("skipped \(file.skippedRowCount) malformed rows")
                }
            }
        }
    }
}
