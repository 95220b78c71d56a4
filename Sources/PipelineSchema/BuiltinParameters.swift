public import RecEngineContract

/// A built-in stage's parameters, validated and typed: one type per built-in. The decoder reads a
/// stage's `with:` into them once; the pipeline's stage and the plan's planned stage carry them,
/// and the executors read nothing else. Plans and records write them as the object of their names
/// and values (`values`), exactly as before they were typed, so that a stage's fingerprint (what
/// its cache compares) is the same for the same pipeline.
public enum BuiltinParameters: Sendable, Equatable, Encodable {
    case ingest(IngestParameters)
    case split(SplitParameters)
    case tune(TuneParameters)
    case train(TrainParameters)
    case evaluate(EvaluateParameters)

    /// The built-in they are the parameters of.
    public var kind: BuiltinStage {
        switch self {
        case .ingest: .ingest
        case .split: .split
        case .tune: .tune
        case .train: .train
        case .evaluate: .evaluate
        }
    }

    /// The parameters by their names in `with:`, as plans show them and records keep them.
    public var values: [String: ParameterValue] {
        switch self {
        case .ingest(let parameters): parameters.values
        case .split(let parameters): parameters.values
        case .tune(let parameters): parameters.values
        case .train(let parameters): parameters.values
        case .evaluate(let parameters): parameters.values
        }
    }

    /// Reads the parameters of a `kind` stage by their names in `with:` (the decoder's validated
    /// values, or a plan a record stored). A parameter left out takes its default; one a built-in
    /// may leave out stays unset.
    ///
    /// - Throws: `Unreadable` when a required parameter is missing or a value has another type or
    ///   is not one of the choices.
    public init(_ kind: BuiltinStage, values: [String: ParameterValue]) throws(Unreadable) {
        let reader = ParameterReader(kind: kind, values: values)
        switch kind {
        case .ingest: self = .ingest(try IngestParameters(reader))
        case .split: self = .split(try SplitParameters(reader))
        case .tune: self = .tune(try TuneParameters(reader))
        case .train: self = .train(try TrainParameters(reader))
        case .evaluate: self = .evaluate(try EvaluateParameters(reader))
        }
    }

    /// Why parameters could not be read.
    public struct Unreadable: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public func encode(to encoder: any Encoder) throws {
        try values.encode(to: encoder)
    }

    /// The `recengine` command line that does the stage's work, printing a JSON object with its
    /// `metrics` on standard output. `baselineShares` are the rating shares of the last promoted
    /// release's ingest, the reference for the ingest's distribution shift.
    public func command(recengine: String, baselineShares: [Double]? = nil) -> [String] {
        let arguments: [String] =
            switch self {
            case .ingest(let parameters): parameters.arguments(baselineShares: baselineShares)
            case .split(let parameters): parameters.arguments
            case .tune(let parameters): parameters.arguments
            case .train(let parameters): parameters.arguments
            case .evaluate(let parameters): parameters.arguments
            }
        return [recengine] + arguments + ["--output", "json"]
    }

    /// Whether the stage must run even when its inputs and parameters are unchanged: a movie log
    /// ingest reads what is new in its source.
    public var alwaysRuns: Bool {
        if case .ingest(let parameters) = self { return parameters.format != .ratings }
        return false
    }
}

/// The algorithms train and tune stages take.
public enum TrainingAlgorithm: String, Sendable, Equatable, CaseIterable {
    case svd, als, ease
}

/// An ingest stage's parameters: the movie log (or a ratings file) it reads and what it writes.
public struct IngestParameters: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// The movie log: a file, a folder, gzip, standard input (`-`) or Kafka.
        case movielog
        /// A ratings file (CSV or MovieLens u.data), copied and checked.
        case ratings
    }

    /// What a ratings import does with a row it cannot read.
    public enum BadRow: String, Sendable, Equatable, CaseIterable {
        case fail, skip
    }

    /// A path, `-` (standard input) or `kafka://HOST:PORT/TOPIC`.
    public var source: String
    public var format: Format = .movielog
    public var output: String
    public var watches: String? = nil
    public var rejects: String? = nil
    /// The folder a movie log ingest keeps its state in (the decoder sets it next to `output`).
    public var store: String? = nil
    public var mode: IngestMode = .stream
    public var group: String = "orchestrate-ingest"
    public var maxRecords: Int = 0
    public var maxSeconds: Double = 300
    public var onBadRow: BadRow = .skip

    public init(source: String, output: String) {
        self.source = source
        self.output = output
    }

    init(_ reader: ParameterReader) throws(BuiltinParameters.Unreadable) {
        source = try reader.string("source")
        format = try reader.choice("format")
        output = try reader.string("output")
        watches = try reader.optionalString("watches")
        rejects = try reader.optionalString("rejects")
        store = try reader.optionalString("store")
        mode = try reader.choice("mode")
        group = try reader.string("group")
        maxRecords = try reader.integer("maxRecords")
        maxSeconds = try reader.number("maxSeconds")
        onBadRow = try reader.choice("onBadRow")
    }

    public var values: [String: ParameterValue] {
        var values: [String: ParameterValue] = [
            "source": .string(source), "format": .string(format.rawValue), "output": .string(output),
            "mode": .string(mode.rawValue), "group": .string(group), "maxRecords": .integer(maxRecords),
            "maxSeconds": .number(maxSeconds), "onBadRow": .string(onBadRow.rawValue),
        ]
        values["watches"] = watches.map(ParameterValue.string)
        values["rejects"] = rejects.map(ParameterValue.string)
        values["store"] = store.map(ParameterValue.string)
        return values
    }

    func arguments(baselineShares: [Double]?) -> [String] {
        var arguments = ["ingest", "--source", source, "--format", format.rawValue, "--out", output]
        switch format {
        case .ratings:
            arguments += ["--on-bad-row", onBadRow.rawValue]
        case .movielog:
            arguments +=
                option("--store", store) + option("--watches", watches) + option("--rejects", rejects)
                + ["--mode", mode.rawValue, "--group", group, "--max-records", String(maxRecords)]
                + ["--max-seconds", formatNumber(maxSeconds)]
            if let baselineShares, baselineShares.count == 5 {
                arguments += ["--baseline-shares", baselineShares.map { String($0) }.joined(separator: ",")]
            }
        }
        return arguments
    }
}

/// A split stage's parameters: a reproducible random (or temporal) hold-out of the ratings.
public struct SplitParameters: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable, CaseIterable {
        case random, temporal
    }

    public var ratings: String
    public var train: String
    public var test: String
    public var testSize: Double = 0.2
    public var seed: Int = 42
    public var mode: Mode = .random
    /// With `mode: temporal`: each user's last N ratings are held out.
    public var lastN: Int = 0
    /// With `mode: temporal`: the share of the newest ratings written to `future`.
    public var futureShare: Double = 0
    public var future: String? = nil

    public init(ratings: String, train: String, test: String) {
        self.ratings = ratings
        self.train = train
        self.test = test
    }

    init(_ reader: ParameterReader) throws(BuiltinParameters.Unreadable) {
        ratings = try reader.string("ratings")
        train = try reader.string("train")
        test = try reader.string("test")
        testSize = try reader.number("testSize")
        seed = try reader.integer("seed")
        mode = try reader.choice("mode")
        lastN = try reader.integer("lastN")
        futureShare = try reader.number("futureShare")
        future = try reader.optionalString("future")
    }

    public var values: [String: ParameterValue] {
        var values: [String: ParameterValue] = [
            "ratings": .string(ratings), "train": .string(train), "test": .string(test),
            "testSize": .number(testSize), "seed": .integer(seed), "mode": .string(mode.rawValue),
            "lastN": .integer(lastN), "futureShare": .number(futureShare),
        ]
        values["future"] = future.map(ParameterValue.string)
        return values
    }

    var arguments: [String] {
        var arguments = [
            "split", "--ratings", ratings, "--train", train, "--test", test, "--test-size", formatNumber(testSize),
            "--seed", String(seed), "--mode", mode.rawValue,
        ]
        if mode == .temporal {
            arguments += ["--last-n", String(lastN)]
            if let future { arguments += ["--future-share", formatNumber(futureShare), "--future", future] }
        }
        return arguments
    }
}

/// A tune stage's parameters: the space searched, the validation protocol and the budget.
public struct TuneParameters: Sendable, Equatable {
    public var ratings: String
    /// The file the choice is written to (what a train stage's `tuned` reads).
    public var output: String
    public var algorithm: TrainingAlgorithm
    /// `NAME=V1,V2;NAME=...` with the names train takes.
    public var space: String
    /// One of `SearchSpace.strategies`.
    public var strategy: String = "grid"
    /// How many combinations `strategy: random` tries.
    public var samples: Int? = nil
    /// One of `TuningProtocol.validations`.
    public var validation: String = "random"
    public var validationShare: Double = 0.25
    public var lastN: Int = 0
    public var seed: Int = 42
    public var k: Int = 10
    /// One of `TuningProtocol.metrics`.
    public var metric: String = "ndcg_at_k"
    /// The name of one of `RankingDefinitions.all`.
    public var definitions: String = "recengine"
    /// Seconds.
    public var timeBudget: Double? = nil
    public var threads: Int = 1

    public init(ratings: String, output: String, algorithm: TrainingAlgorithm, space: String) {
        self.ratings = ratings
        self.output = output
        self.algorithm = algorithm
        self.space = space
    }

    init(_ reader: ParameterReader) throws(BuiltinParameters.Unreadable) {
        ratings = try reader.string("ratings")
        output = try reader.string("output")
        algorithm = try reader.choice("algorithm")
        space = try reader.string("space")
        strategy = try reader.string("strategy")
        samples = try reader.optionalInteger("samples")
        validation = try reader.string("validation")
        validationShare = try reader.number("validationShare")
        lastN = try reader.integer("lastN")
        seed = try reader.integer("seed")
        k = try reader.integer("k")
        metric = try reader.string("metric")
        definitions = try reader.string("definitions")
        timeBudget = try reader.optionalNumber("timeBudget")
        threads = try reader.integer("threads")
    }

    public var values: [String: ParameterValue] {
        var values: [String: ParameterValue] = [
            "ratings": .string(ratings), "output": .string(output), "algorithm": .string(algorithm.rawValue),
            "space": .string(space), "strategy": .string(strategy), "validation": .string(validation),
            "validationShare": .number(validationShare), "lastN": .integer(lastN), "seed": .integer(seed),
            "k": .integer(k), "metric": .string(metric), "definitions": .string(definitions),
            "threads": .integer(threads),
        ]
        values["samples"] = samples.map(ParameterValue.integer)
        values["timeBudget"] = timeBudget.map(ParameterValue.number)
        return values
    }

    var arguments: [String] {
        var arguments =
            ["tune", "--ratings", ratings, "--out", output, "--algorithm", algorithm.rawValue, "--space", space]
            + ["--strategy", strategy] + option("--samples", samples.map(String.init))
            + ["--validation", validation, "--validation-share", formatNumber(validationShare)]
        if validation == "temporal" { arguments += ["--last-n", String(lastN)] }
        arguments +=
            ["--seed", String(seed), "--k", String(k), "--metric", metric, "--definitions", definitions]
            + option("--time-budget", timeBudget.map(formatNumber)) + ["--threads", String(threads)]
        return arguments
    }
}

/// A train stage's parameters. Left unset, `factors`, `epochs` and `reg` are the algorithm's own
/// defaults; a tuned stage (`tuned`) also leaves `lr` and `alpha` to the tune's choice.
public struct TrainParameters: Sendable, Equatable {
    public var ratings: String
    /// The model folder written.
    public var model: String
    public var algorithm: TrainingAlgorithm = .svd
    public var factors: Int? = nil
    public var epochs: Int? = nil
    /// SVD's learning rate.
    public var lr: Double? = 0.005
    public var reg: Double? = nil
    /// SVD's initial factors' standard deviation.
    public var initStd: Double = 0.1
    /// ALS's confidence weight.
    public var alpha: Double? = TrainDefaults.alsAlpha
    /// ALS's and EASE's threads.
    public var threads: Int = 1
    /// ALS's and EASE's watch events.
    public var watches: String? = nil
    public var seed: Int = 0
    /// The model's version (else its digest).
    public var version: String? = nil
    /// The file of a tune stage's choice.
    public var tuned: String? = nil

    public init(ratings: String, model: String) {
        self.ratings = ratings
        self.model = model
    }

    init(_ reader: ParameterReader) throws(BuiltinParameters.Unreadable) {
        ratings = try reader.string("ratings")
        model = try reader.string("model")
        algorithm = try reader.choice("algorithm")
        factors = try reader.optionalInteger("factors")
        epochs = try reader.optionalInteger("epochs")
        lr = try reader.optionalNumber("lr")
        reg = try reader.optionalNumber("reg")
        initStd = try reader.number("initStd")
        alpha = try reader.optionalNumber("alpha")
        threads = try reader.integer("threads")
        watches = try reader.optionalString("watches")
        seed = try reader.integer("seed")
        version = try reader.optionalString("version")
        tuned = try reader.optionalString("tuned")
    }

    public var values: [String: ParameterValue] {
        var values: [String: ParameterValue] = [
            "ratings": .string(ratings), "model": .string(model), "algorithm": .string(algorithm.rawValue),
            "initStd": .number(initStd), "threads": .integer(threads), "seed": .integer(seed),
        ]
        values["factors"] = factors.map(ParameterValue.integer)
        values["epochs"] = epochs.map(ParameterValue.integer)
        values["lr"] = lr.map(ParameterValue.number)
        values["reg"] = reg.map(ParameterValue.number)
        values["alpha"] = alpha.map(ParameterValue.number)
        values["watches"] = watches.map(ParameterValue.string)
        values["version"] = version.map(ParameterValue.string)
        values["tuned"] = tuned.map(ParameterValue.string)
        return values
    }

    var arguments: [String] {
        var arguments =
            ["train", "--ratings", ratings, "--out", model, "--algorithm", algorithm.rawValue]
            + option("--factors", factors.map(String.init)) + option("--epochs", epochs.map(String.init))
            + option("--reg", reg.map(formatNumber))
        switch algorithm {
        case .als:
            arguments +=
                option("--alpha", alpha.map(formatNumber)) + ["--threads", String(threads)]
                + option("--watches", watches)
        case .ease:
            arguments += ["--threads", String(threads)] + option("--watches", watches)
        case .svd:
            arguments += option("--lr", lr.map(formatNumber)) + ["--init-std", formatNumber(initStd)]
        }
        arguments +=
            ["--seed", String(seed)] + option("--model-version", version) + option("--tuned", tuned)
        return arguments
    }
}

/// An evaluate stage's parameters: the model, the test ratings and the cut-off of its rankings.
public struct EvaluateParameters: Sendable, Equatable {
    public var model: String
    public var ratings: String
    public var k: Int = 10

    public init(model: String, ratings: String) {
        self.model = model
        self.ratings = ratings
    }

    init(_ reader: ParameterReader) throws(BuiltinParameters.Unreadable) {
        model = try reader.string("model")
        ratings = try reader.string("ratings")
        k = try reader.integer("k")
    }

    public var values: [String: ParameterValue] {
        ["model": .string(model), "ratings": .string(ratings), "k": .integer(k)]
    }

    var arguments: [String] {
        ["evaluate", "--model", model, "--ratings", ratings, "--k", String(k)]
    }
}

/// `[flag, value]`, or nothing without a value.
private func option(_ flag: String, _ value: String?) -> [String] {
    value.map { [flag, $0] } ?? []
}

/// Reads a built-in's parameters by name: a required one left out takes its default (from
/// `BuiltinStage.parameters`); an optional one stays unset.
struct ParameterReader {
    var kind: BuiltinStage
    var values: [String: ParameterValue]

    private func value(_ name: String) throws(BuiltinParameters.Unreadable) -> ParameterValue {
        if let value = values[name] { return value }
        if let value = kind.parameters.first(where: { $0.name == name })?.defaultValue { return value }
        throw .init(description: "the \(kind.rawValue) stage's parameter \"\(name)\" is missing")
    }

    private func wrongType(_ name: String, _ value: ParameterValue, _ expected: String) -> BuiltinParameters.Unreadable
    {
        .init(description: "the \(kind.rawValue) stage's parameter \"\(name)\" is \(value), not \(expected)")
    }

    func string(_ name: String) throws(BuiltinParameters.Unreadable) -> String {
        let value = try value(name)
        guard case .string(let text) = value else { throw wrongType(name, value, "a string") }
        return text
    }

    func integer(_ name: String) throws(BuiltinParameters.Unreadable) -> Int {
        let value = try value(name)
        guard case .integer(let number) = value else { throw wrongType(name, value, "a whole number") }
        return number
    }

    func number(_ name: String) throws(BuiltinParameters.Unreadable) -> Double {
        switch try value(name) {
        case .number(let number): return number
        // A whole number a plan stored reads back as an integer.
        case .integer(let number): return Double(number)
        case let value: throw wrongType(name, value, "a number")
        }
    }

    func choice<Choice: RawRepresentable<String>>(_ name: String) throws(BuiltinParameters.Unreadable) -> Choice {
        let text = try string(name)
        guard let choice = Choice(rawValue: text) else { throw wrongType(name, .string(text), "one of its choices") }
        return choice
    }

    func optionalString(_ name: String) throws(BuiltinParameters.Unreadable) -> String? {
        guard values[name] != nil else { return nil }
        return try string(name)
    }

    func optionalInteger(_ name: String) throws(BuiltinParameters.Unreadable) -> Int? {
        guard values[name] != nil else { return nil }
        return try integer(name)
    }

    func optionalNumber(_ name: String) throws(BuiltinParameters.Unreadable) -> Double? {
        guard values[name] != nil else { return nil }
        return try number(name)
    }
}
