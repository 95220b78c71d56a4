public import ArgumentParser
import CommandLineSupport
import DurableFiles
import Foundation
import RecEngine
import RecEngineContract

struct RecEngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recengine",
        abstract: "Train, evaluate and serve recommenders (Surprise-compatible SVD, implicit ALS, EASE).",
        discussion: """
            Exit codes: 0 success, 1 a runtime failure (e.g. the port is taken, a file that cannot be \
            read), 2 invalid input or usage (bad arguments, malformed ratings, an input that is not a \
            regular file or too large, a corrupt model, training that diverges, a metric that is not a \
            finite number), 4 Kafka unreachable (ingest).
            """,
        subcommands: [
            SplitCommand.self, TrainCommand.self, EvaluateCommand.self, CrossValidateCommand.self, TuneCommand.self,
            ServeCommand.self, SimulateCommand.self, EmitLogCommand.self, IngestCommand.self, CheckSourceCommand.self,
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

extension RankingDefinitions: ExpressibleByArgument {
    init?(argument: String) {
        self.init(named: argument)
    }

    static var allValueStrings: [String] { all.map(\.name) }
}

struct TrainingOptions: ParsableArguments {
    @Option(
        help:
            "svd (explicit ratings, predicts them as Surprise's SVD), als (implicit ALS on ratings and watches, ranks) or ease (closed-form item-item model on ratings and watches, ranks; memory grows with the square of the catalogue)."
    )
    var algorithm: Algorithm = .svd
    @Option(help: "Latent factors (default: svd 100, als 64).") var factors: Int?
    @Option(help: "SGD epochs, or ALS iterations (default: svd 20, als 15).") var epochs: Int?
    @Option(help: "svd: learning rate (default 0.005).") var lr: Double?
    @Option(help: "Regularisation (default: svd 0.02, als 0.05, ease λ 500).") var reg: Double?
    @Option(help: "svd: standard deviation of the initial factors.") var initStd = 0.1
    @Option(help: "als: confidence of a pair with n events is 1 + alpha ln(1 + n) (default \(ALSParameters().alpha)).")
    var alpha: Double?
    @Option(help: "als: conjugate-gradient steps per row and iteration.") var cgSteps = ALSParameters().cgSteps
    @Option(help: "als, ease: threads that solve rows in parallel.") var threads = 1
    @Option(help: "Seed of the initial factors.") var seed: UInt64 = 0

    enum Algorithm: String, ExpressibleByArgument, CaseIterable {
        case svd, als, ease
    }

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be from 1 to 256") }
    }

    var parameters: SVDParameters {
        let defaults = SVDParameters()
        return SVDParameters(
            factors: factors ?? defaults.factors, epochs: epochs ?? defaults.epochs,
            learningRate: lr ?? defaults.learningRate,
            regularization: reg ?? defaults.regularization,
            initStd: initStd, seed: seed)
    }

    /// ALS's parameters when `--algorithm als`.
    var alsParameters: ALSParameters? {
        guard algorithm == .als else { return nil }
        let defaults = ALSParameters()
        return ALSParameters(
            factors: factors ?? defaults.factors, iterations: epochs ?? defaults.iterations,
            regularization: reg ?? defaults.regularization,
            alpha: alpha ?? defaults.alpha, cgSteps: cgSteps, seed: seed)
    }

    /// These options with the parameters a tune chose filled in (`train --tuned FILE`).
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` when the choice is for another algorithm or
    ///   names a parameter also given here.
    func tuned(by choice: TuningChoice, file: String) throws -> TrainingOptions {
        let given: [String: Bool] = [
            "factors": factors != nil, "epochs": epochs != nil, "lr": lr != nil, "reg": reg != nil,
            "alpha": alpha != nil,
        ]
        let chosen = try choice.parameters(
            for: algorithm.rawValue, given: Set(given.filter(\.value).keys), location: file)
        var options = self
        options.factors = chosen["factors"].map { Int($0) } ?? factors
        options.epochs = chosen["epochs"].map { Int($0) } ?? epochs
        options.lr = chosen["lr"] ?? lr
        options.reg = chosen["reg"] ?? reg
        options.alpha = chosen["alpha"] ?? alpha
        return options
    }

    /// EASE's parameters when `--algorithm ease`.
    var easeParameters: EASEParameters? {
        guard algorithm == .ease else { return nil }
        return EASEParameters(regularization: reg ?? EASEParameters().regularization)
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
    let data = try JSONSerialization.data(
        withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

func format(_ value: Double, _ digits: Int = 4) -> String {
    String(format: "%.\(digits)f", value)
}
