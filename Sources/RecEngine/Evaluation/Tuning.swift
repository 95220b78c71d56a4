import DurableFiles
import Foundation
public import RecEngineContract

extension SearchSpace {
    /// Every combination in a fixed order (parameters by name, values as given), or for `random`
    /// the first `samples` of them after a shuffle with `seed`. For `halving`, each with the full
    /// epochs; `Tuning.run` trains them for fewer in the first rounds.
    public func candidates(seed: UInt64) -> [[String: Double]] {
        var result: [[String: Double]] = [[:]]
        for name in values.keys.sorted() {
            result = result.flatMap { partial in values[name, default: []].map { partial.merging([name: $0]) { $1 } } }
        }
        guard strategy == "random", let samples else { return result }
        var generator = SeededGenerator(seed: seed)
        generator.shuffle(&result)
        return Array(result.prefix(samples))
    }
}

/// What a search chose, as `recengine tune --out` keeps it for `train --tuned`: the algorithm and
/// its parameters, nothing else, so that the same choice from another search is the same file
/// (and a pipeline's train stage that reads it stays cached).
public struct TuningChoice: Sendable, Codable, Equatable {
    public var algorithm: String
    /// By the names `train` takes.
    public var parameters: [String: Double]

    public init(algorithm: String, parameters: [String: Double]) {
        self.algorithm = algorithm
        self.parameters = parameters
    }

    /// The largest choice file read: a few parameters fit many times over.
    public static let maximumFileSize = 1 << 20

    /// Writes the choice as JSON, replacing the file atomically: a reader sees the old choice or
    /// the new one, never half of one.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try AtomicFile.write(try encoder.encode(self), to: path)
    }

    /// Reads a choice `recengine tune --out` wrote.
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` (`PATH: what is wrong`) for a file that is not
    ///   a regular file, is too large or is not a choice; `.fileSystem` when it is missing or
    ///   unreadable.
    public static func load(path: String) throws -> TuningChoice {
        let data: Data
        do {
            data = try InputFile.read(path, limit: maximumFileSize)
        } catch {
            throw RecEngineError(
                error.isBadInput ? .invalidArgument : .fileSystem, "cannot read the tune choice: \(error.reason)",
                location: path,
                hint: "give the file recengine tune --out wrote")
        }
        do {
            return try JSONDecoder().decode(TuningChoice.self, from: data)
        } catch {
            throw RecEngineError(
                .invalidArgument, "not a tune choice (\(Self.describe(error)))", location: path,
                hint: "give the file recengine tune --out wrote")
        }
    }

    /// The chosen parameters, for training `algorithm` with the parameters in `given` already set
    /// by the caller (a parameter set twice is refused rather than one silently winning).
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` at `location` when the choice is for another
    ///   algorithm, names a parameter `algorithm` does not take or a value that is not a finite
    ///   number (a whole one for factors and epochs), or names a parameter in `given`.
    public func parameters(for algorithm: String, given: Set<String>, location: String) throws -> [String: Double] {
        guard self.algorithm == algorithm else {
            throw RecEngineError(
                .invalidArgument, "the tune chose parameters for \(self.algorithm), not \(algorithm)",
                location: location,
                hint: "train the algorithm that was tuned, or tune \(algorithm)")
        }
        let names = SearchSpace.parameterNames[algorithm] ?? []
        for (name, value) in parameters.sorted(by: { $0.key < $1.key }) {
            guard names.contains(name) else {
                throw RecEngineError(
                    .invalidArgument,
                    "the tune chose \(name), which \(algorithm) does not take (\(names.joined(separator: ", ")))",
                    location: location)
            }
            let whole = name == "factors" || name == "epochs"
            guard value.isFinite, !whole || (value == value.rounded() && abs(value) < 1e9) else {
                throw RecEngineError(
                    .invalidArgument, "the tune chose \(name) = \(value), not a \(whole ? "whole " : "")finite number",
                    location: location)
            }
            guard !given.contains(name) else {
                throw RecEngineError(
                    .invalidArgument, "\(name) is set here and also chosen by the tune (\(value))", location: location,
                    hint: "leave \(name) out to train with the tuned value, or leave out the tune's choice")
            }
        }
        return parameters
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "it has no \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty
                ? "it is not a JSON object"
                : "its \(context.codingPath.map(\.stringValue).joined(separator: ".")) is not what a choice holds"
        default: "\(error)"
        }
    }
}

extension TuningReport {
    /// The choice alone, as `--out` keeps it.
    public var choice: TuningChoice { TuningChoice(algorithm: algorithm, parameters: chosen) }
}

public enum Tuning {
    /// Tries the candidates of `space` in order, each trained on the fitting side of one validation
    /// split of `training` and scored on its held-out side, and chooses the best. No candidate
    /// starts once `budget` is spent (the first always runs); the same inputs and seed choose the
    /// same parameters.
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` for a protocol out of range or a validation
    ///   split with an empty side, and whatever training a candidate throws.
    public static func run(
        _ training: RatingsFile, space: SearchSpace, protocol rankingProtocol: TuningProtocol, threads: Int = 1,
        budget: Duration? = nil,
        progress: (TuningReport.Trial) -> Void = { _ in }
    ) throws -> TuningReport {
        try rankingProtocol.validate()
        let ratings = training.ratings
        let split = try validationSplit(ratings, rankingProtocol)
        let fit = RatingsFile(
            path: training.path, ratings: ratings.subset(split.train), format: training.format, sha256: training.sha256)
        let validation = ratings.subset(split.test)
        let candidates = space.candidates(seed: rankingProtocol.seed)
        let clock = ContinuousClock()
        let start = clock.now
        var trials: [TuningReport.Trial] = []
        var stopped = false
        /// Trains and scores each of `round` in order; false when the budget ran out first.
        func attempt(_ round: [[String: Double]]) throws -> Bool {
            for candidate in round {
                if let budget, !trials.isEmpty, clock.now - start >= budget { return false }
                let model = try train(space.algorithm, candidate, on: fit, threads: threads, seed: rankingProtocol.seed)
                let report = RankingEvaluation.evaluate(
                    model, on: validation, k: rankingProtocol.k, definitions: rankingProtocol.definitions)
                let trial = TuningReport.Trial(
                    parameters: candidate, score: report.metrics[rankingProtocol.metric] ?? .nan,
                    fitSeconds: model.manifest.metrics.fitSeconds)
                trials.append(trial)
                progress(trial)
            }
            return true
        }
        // The trials the choice is made among: every one, or for halving the last round's (the
        // last that tried anything when the budget ran out).
        var finalists = 0
        if space.strategy == "halving" {
            let rounds = halvingRounds(candidates.count)
            let full = Int(space.values["epochs"]?.first ?? 1)
            var survivors = candidates
            for round in 0..<rounds {
                var divisor = 1
                for _ in round..<(rounds - 1) { divisor *= SearchSpace.halvingRate }
                let epochs = Double(max(1, full / divisor))
                let roundStart = trials.count
                stopped = try !attempt(survivors.map { $0.merging(["epochs": epochs]) { $1 } })
                // Out of budget: the choice is among the last round that tried anything.
                if trials.count > roundStart { finalists = roundStart }
                if stopped || round == rounds - 1 { break }
                let scored = trials[roundStart...]
                let keep = (survivors.count + SearchSpace.halvingRate - 1) / SearchSpace.halvingRate
                let ranked = scored.indices.sorted {
                    better(trials[$0], than: trials[$1]) || (!better(trials[$1], than: trials[$0]) && $0 < $1)
                }
                survivors = ranked.prefix(keep).sorted().map { survivors[$0 - roundStart] }
            }
        } else {
            stopped = try !attempt(candidates)
        }
        let best = try choose(trials[finalists...], metric: rankingProtocol.metric)
        return TuningReport(
            algorithm: space.algorithm, space: space, protocol: rankingProtocol, chosen: best.parameters,
            score: best.score, trials: trials,
            candidates: candidates.count, stoppedByBudget: stopped, budgetSeconds: budget?.seconds,
            fitRatings: split.train.count,
            validationRatings: split.test.count)
    }

    /// The best of `finalists` (the first of equal scores).
    ///
    /// - Throws: `RecEngineError` `.nonFiniteMetric` when no finalist scored a number: a choice
    ///   among scores that are all NaN would be the first candidate, chosen by nothing.
    static func choose(_ finalists: ArraySlice<TuningReport.Trial>, metric: String) throws -> TuningReport.Trial {
        guard var best = finalists.first else {
            throw RecEngineError(.invalidArgument, "the search tried no candidate")
        }
        for trial in finalists.dropFirst() where better(trial, than: best) {
            best = trial
        }
        guard best.score.isFinite else {
            throw RecEngineError(
                .nonFiniteMetric,
                "no candidate scored a number: \(metric) was not a finite number for each of the \(finalists.count) trials, so there is nothing to choose (is the validation side empty of users the fitting side knows?)"
            )
        }
        return best
    }

    /// A higher score, or a finite one against one that is not (the first of equals stays best).
    static func better(_ trial: TuningReport.Trial, than other: TuningReport.Trial) -> Bool {
        trial.score > other.score || (!other.score.isFinite && trial.score.isFinite)
    }

    /// Rounds of successive halving for `count` candidates: until one is left, each keeping the
    /// best 1/rate (rounded up); 1 for a single candidate.
    static func halvingRounds(_ count: Int) -> Int {
        var rounds = 1
        var left = count
        while left > 1 {
            left = (left + SearchSpace.halvingRate - 1) / SearchSpace.halvingRate
            rounds += 1
        }
        return rounds
    }

    /// A model of `algorithm` with its defaults overridden by `parameters`.
    static func train(
        _ algorithm: String, _ parameters: [String: Double], on file: RatingsFile, threads: Int, seed: UInt64
    ) throws -> RecommenderModel {
        func integer(_ name: String) throws -> Int? {
            guard let value = parameters[name] else { return nil }
            guard value == value.rounded(), abs(value) < 1e9 else {
                throw RecEngineError(.invalidArgument, "--space: \(name) takes whole numbers, got \(value)")
            }
            return Int(value)
        }
        switch algorithm {
        case "ease":
            return try RecommenderModel.trainEASE(
                on: file,
                parameters: EASEParameters(regularization: parameters["reg"] ?? EASEParameters().regularization),
                threads: threads)
        case "als":
            let defaults = ALSParameters()
            let als = ALSParameters(
                factors: try integer("factors") ?? defaults.factors,
                iterations: try integer("epochs") ?? defaults.iterations,
                regularization: parameters["reg"] ?? defaults.regularization,
                alpha: parameters["alpha"] ?? defaults.alpha, seed: seed)
            return try RecommenderModel.trainALS(on: file, parameters: als, threads: threads)
        default:
            let defaults = SVDParameters()
            let svd = SVDParameters(
                factors: try integer("factors") ?? defaults.factors, epochs: try integer("epochs") ?? defaults.epochs,
                learningRate: parameters["lr"] ?? defaults.learningRate,
                regularization: parameters["reg"] ?? defaults.regularization, seed: seed)
            return try RecommenderModel.train(on: file, parameters: svd)
        }
    }

    static func validationSplit(
        _ ratings: Ratings, _ rankingProtocol: TuningProtocol
    ) throws -> (train: [Int], test: [Int]) {
        switch rankingProtocol.validation {
        case "temporal":
            guard let stamps = ratings.timestamps else {
                throw RecEngineError(
                    .invalidArgument, "--validation temporal needs a timestamp on every rating; these ratings have none"
                )
            }
            let times = try stamps.enumerated().map { row, text in
                guard let time = Split.time(of: text) else {
                    throw RecEngineError(
                        .invalidArgument,
                        "row \(row + 1) has no usable timestamp (\"\(text)\") for --validation temporal")
                }
                return time
            }
            let split = try Split.temporal(
                times: times, users: ratings.users, testSize: rankingProtocol.validationShare,
                lastN: rankingProtocol.lastN, futureShare: 0)
            return (split.train, split.test)
        case "stratified-item":
            return try Split.stratified(
                groups: ratings.items, testSize: rankingProtocol.validationShare, seed: rankingProtocol.seed)
        case "stratified-user":
            return try Split.stratified(
                groups: ratings.users, testSize: rankingProtocol.validationShare, seed: rankingProtocol.seed)
        default:
            return try Split.holdout(
                count: ratings.count, testSize: rankingProtocol.validationShare, seed: rankingProtocol.seed)
        }
    }
}
