import CommandLineSupport
import ArgumentParser
import RecEngine

struct SplitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "split", abstract: "Split ratings into a training and a test file (random hold-out).")

    @OptionGroup var input: RatingsOptions
    @Option(help: "Share of ratings for the test file, between 0 and 1.") var testSize = 0.2
    @Option(help: "Seed of the shuffle; the same seed gives the same split.") var seed: UInt64 = 42
    @Option(help: "Training file to write (CSV).") var train: String
    @Option(help: "Test file to write (CSV).") var test: String
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var train: Int
        var test: Int
        var skippedRows: Int
        var format: RatingsFormat
        var sha256: String

        enum CodingKeys: String, CodingKey {
            case train, test, format, sha256
            case skippedRows = "skipped_rows"
        }
    }

    func run() async throws {
        try await reportingErrors {
            let file = try input.load()
            let split = try Split.holdout(count: file.ratings.count, testSize: testSize, seed: seed)
            try RatingsFile.writeCSV(file.ratings.subset(split.train), to: train)
            try RatingsFile.writeCSV(file.ratings.subset(split.test), to: test)
            let report = Report(
                train: split.train.count, test: split.test.count, skippedRows: file.skippedRowCount,
                format: file.format, sha256: file.sha256)
            if output.output == .json {
                try printJSON(report, metrics: ["train_ratings": Double(split.train.count), "test_ratings": Double(split.test.count)])
            } else {
                print("split \(file.ratings.count) ratings (\(file.format.rawValue)): \(split.train.count) -> \(train), \(split.test.count) -> \(test)")
                if file.skippedRowCount > 0 {
                    print("skipped \(file.skippedRowCount) malformed rows")
                }
            }
        }
    }
}
