public import ArgumentParser
import Foundation
import CommandLineSupport
import DurableFiles
import RecEngine

struct RecEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recengine",
        abstract: "Train, evaluate and serve matrix-factorisation recommenders (Surprise-compatible SVD).",
        discussion: """
            Exit codes: 0 success, 1 a runtime failure (e.g. the port is taken, a file that cannot be \
            read), 2 invalid input or usage (bad arguments, malformed ratings, an input that is not a \
            regular file or too large, a corrupt model, training that diverges, a metric that is not a \
            finite number), 4 Kafka unreachable (ingest).
            """,
        subcommands: [
            SplitCommand.self, TrainCommand.self, EvaluateCommand.self, CrossValidateCommand.self, ServeCommand.self, SimulateCommand.self, EmitLogCommand.self, IngestCommand.self,
        ]
    )
}

struct OutputOptions: ParsableArguments {
    @Option(help: "text for people, json for programs (one object on stdout).")
    var output: OutputFormat = .text
}

struct RatingsOptions: ParsableArguments {
    @Option(help: "Ratings file: CSV with header user_id,movie_id,rating[,timestamp], or MovieLens u.data.")
    var ratings: String

    @Option(help: "What to do with malformed rows: fail (default) or skip and count them.")
    var onBadRow: BadRowPolicy = .fail

    func load() throws -> RatingsFile {
        try RatingsFile.load(path: ratings, onBadRow: onBadRow)
    }
}

extension BadRowPolicy: ExpressibleByArgument {}
extension IngestMode: ExpressibleByArgument {}

struct TrainingOptions: ParsableArguments {
    @Option(help: "Latent factors.") var factors = 100
    @Option(help: "SGD epochs.") var epochs = 20
    @Option(help: "Learning rate.") var lr = 0.005
    @Option(help: "Regularisation.") var reg = 0.02
    @Option(help: "Standard deviation of the initial factors.") var initStd = 0.1
    @Option(help: "Seed of the initial factors.") var seed: UInt64 = 0

    var parameters: SVDParameters {
        SVDParameters(factors: factors, epochs: epochs, learningRate: lr, regularization: reg, initStd: initStd, seed: seed)
    }
}

/// Runs a command body, turning RecEngine errors into a message on stderr and exit code 2.
func reportingErrors<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as RecEngineError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(error.code == .fileSystem ? 1 : error.code == .unavailable ? 4 : 2)
    } catch let error as AtomicFileError {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// Prints `value` as JSON with a `metrics` object added: the numbers a pipeline's gates bound
/// (the orchestrator reads them from the built-in stages it runs as `recengine ... --output json`).
func printJSON(_ value: some Encodable, metrics: [String: Double]) throws {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    var object = try JSONSerialization.jsonObject(with: try encoder.encode(value)) as? [String: Any] ?? [:]
    object["metrics"] = metrics.mapValues { $0.isFinite ? $0 as Any : NSNull() }
    let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

func format(_ value: Double, _ digits: Int = 4) -> String {
    String(format: "%.\(digits)f", value)
}
