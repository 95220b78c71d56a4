import Foundation
import PipelineSchema
import RecEngineContract
import StrictYAML
import TestSupport
import Testing

/// Each built-in's `with:` is read once, by the decoder, into that built-in's parameters type:
/// good values come out typed (defaults filled in, paths resolved), and every refusal names the
/// parameter's path with its message.
@Suite struct BuiltinParametersTests {
    static func stages(_ yaml: String, in folder: String) throws -> [Stage] {
        try "version: 1\nname: demo\nstages:\n\(yaml)".write(
            toFile: folder + "/pipeline.yml", atomically: true, encoding: .utf8)
        return try PipelineLoader(environment: [:]).load(folder + "/pipeline.yml").stages
    }

    static func parameters(_ yaml: String, in folder: String) throws -> BuiltinParameters {
        try #require(try stages(yaml, in: folder).first?.parameters)
    }

    @Test func anIngestStagesParametersAreTyped() async throws {
        try await withTemporaryDirectory { folder in
            let movieLog = try Self.parameters(
                """
                  - name: ingest
                    uses: ingest
                    with:
                      source: log
                      output: data/ratings.csv
                      watches: /w.csv
                      rejects: /r.tsv
                      mode: historical
                      group: g
                      maxRecords: 500
                      maxSeconds: 2.5

                """, in: folder)
            var expected = IngestParameters(source: folder + "/log", output: folder + "/data/ratings.csv")
            expected.watches = "/w.csv"
            expected.rejects = "/r.tsv"
            expected.store = folder + "/data/ingest-store"
            expected.mode = .historical
            expected.group = "g"
            expected.maxRecords = 500
            expected.maxSeconds = 2.5
            #expect(movieLog == .ingest(expected))
            #expect(movieLog.kind == .ingest && movieLog.alwaysRuns)

            let ratings = try Self.parameters(
                "  - name: i\n    uses: ingest\n    with: {source: /u.data, format: ratings, output: /o.csv, onBadRow: fail}\n",
                in: folder)
            var imported = IngestParameters(source: "/u.data", output: "/o.csv")
            imported.format = .ratings
            imported.onBadRow = .fail
            #expect(ratings == .ingest(imported))
            #expect(!ratings.alwaysRuns, "a ratings file is cached like any input")

            let kafka = try Self.parameters(
                "  - name: k\n    uses: ingest\n    with: {source: \"kafka://127.0.0.1:9092/log\", output: /o.csv}\n",
                in: folder)
            guard case .ingest(let fromKafka) = kafka else { Issue.record("\(kafka)"); return }
            #expect(fromKafka.source == "kafka://127.0.0.1:9092/log", "a Kafka source is not a path")
        }
    }

    @Test func aSplitStagesParametersAreTyped() async throws {
        try await withTemporaryDirectory { folder in
            let random = try Self.parameters(
                "  - name: s\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, testSize: 0.3, seed: 7}\n",
                in: folder)
            var expected = SplitParameters(ratings: "/r.csv", train: "/a.csv", test: "/b.csv")
            expected.testSize = 0.3
            expected.seed = 7
            #expect(random == .split(expected))

            let temporal = try Self.parameters(
                """
                  - name: s
                    uses: split
                    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, mode: temporal, lastN: 2, futureShare: 0.1, future: /f.csv}

                """, in: folder)
            expected = SplitParameters(ratings: "/r.csv", train: "/a.csv", test: "/b.csv")
            expected.mode = .temporal
            expected.lastN = 2
            expected.futureShare = 0.1
            expected.future = "/f.csv"
            #expect(temporal == .split(expected))
        }
    }

    @Test func aTuneStagesParametersAreTyped() async throws {
        try await withTemporaryDirectory { folder in
            let tune = try Self.parameters(
                """
                  - name: t
                    uses: tune
                    with:
                      ratings: /r.csv
                      output: /c.json
                      algorithm: als
                      space: "factors=8,16;reg=0.01,0.1"
                      strategy: random
                      samples: 3
                      validation: temporal
                      lastN: 2
                      metric: map_at_k
                      timeBudget: 60
                      threads: 2

                """, in: folder)
            var expected = TuneParameters(
                ratings: "/r.csv", output: "/c.json", algorithm: .als, space: "factors=8,16;reg=0.01,0.1")
            expected.strategy = "random"
            expected.samples = 3
            expected.validation = "temporal"
            expected.lastN = 2
            expected.metric = "map_at_k"
            expected.timeBudget = 60
            expected.threads = 2
            #expect(tune == .tune(expected))
        }
    }

    @Test func aTrainStagesParametersAreTyped() async throws {
        try await withTemporaryDirectory { folder in
            let svd = try Self.parameters(
                "  - name: t\n    uses: train\n    with: {ratings: /r.csv, model: m, factors: 8, epochs: 3, lr: 0.01, reg: 0.05}\n",
                in: folder)
            var expected = TrainParameters(ratings: "/r.csv", model: folder + "/m")
            expected.factors = 8
            expected.epochs = 3
            expected.lr = 0.01
            expected.reg = 0.05
            #expect(svd == .train(expected))

            let ease = try Self.parameters(
                """
                  - name: t
                    uses: train
                    with: {ratings: /r.csv, model: /m, algorithm: ease, reg: 50, threads: 2, watches: /w.csv, version: v7}

                """, in: folder)
            expected = TrainParameters(ratings: "/r.csv", model: "/m")
            expected.algorithm = .ease
            expected.reg = 50
            expected.threads = 2
            expected.watches = "/w.csv"
            expected.version = "v7"
            #expect(ease == .train(expected))

            // A tuned stage leaves the learning rate and alpha it was not given to the tune's choice.
            let tuned = try Self.stages(
                """
                  - name: tune
                    uses: tune
                    with: {ratings: /r.csv, output: /c.json, algorithm: als, space: "reg=0.01,0.1"}
                  - name: train
                    uses: train
                    with: {ratings: /r.csv, model: /m, algorithm: als, tuned: /c.json}

                """, in: folder)
            expected = TrainParameters(ratings: "/r.csv", model: "/m")
            expected.algorithm = .als
            expected.tuned = "/c.json"
            expected.lr = nil
            expected.alpha = nil
            #expect(tuned[1].parameters == .train(expected))
        }
    }

    @Test func anEvaluateStagesParametersAreTyped() async throws {
        try await withTemporaryDirectory { folder in
            let evaluate = try Self.parameters(
                "  - name: e\n    uses: evaluate\n    with: {model: /m, ratings: /t.csv, k: 20}\n", in: folder)
            var expected = EvaluateParameters(model: "/m", ratings: "/t.csv")
            expected.k = 20
            #expect(evaluate == .evaluate(expected))
        }
    }

    /// Left out, a parameter takes the default `BuiltinStage.parameters` documents, which is the
    /// typed parameters' own default: the two tables agree.
    @Test func theTypesDefaultsAreTheDocumentedOnes() async throws {
        try await withTemporaryDirectory { folder in
            let stages = try Self.stages(
                """
                  - name: ingest
                    uses: ingest
                    with: {source: /log, output: /o.csv, store: /s}
                  - name: split
                    uses: split
                    with: {ratings: /o.csv, train: /a.csv, test: /b.csv}
                  - name: tune
                    uses: tune
                    with: {ratings: /a.csv, output: /c.json, algorithm: svd, space: "reg=0.01,0.1"}
                  - name: train
                    uses: train
                    with: {ratings: /a.csv, model: /m}
                  - name: evaluate
                    uses: evaluate
                    with: {model: /m, ratings: /b.csv}

                """, in: folder)
            var ingest = IngestParameters(source: "/log", output: "/o.csv")
            ingest.store = "/s"
            #expect(
                stages.map(\.parameters) == [
                    .ingest(ingest), .split(SplitParameters(ratings: "/o.csv", train: "/a.csv", test: "/b.csv")),
                    .tune(TuneParameters(ratings: "/a.csv", output: "/c.json", algorithm: .svd, space: "reg=0.01,0.1")),
                    .train(TrainParameters(ratings: "/a.csv", model: "/m")),
                    .evaluate(EvaluateParameters(model: "/m", ratings: "/b.csv")),
                ])
        }
    }

    /// What a plan stored reads back: a whole number stored for a number is that number; a
    /// parameter the stored plan lacks takes its default; a missing required one or a value that
    /// is not one of the choices is refused with its name.
    @Test func storedValuesReadBackTyped() throws {
        let split = try BuiltinParameters(
            .split,
            values: ["ratings": .string("/r"), "train": .string("/a"), "test": .string("/b"), "testSize": .integer(1)])
        var expected = SplitParameters(ratings: "/r", train: "/a", test: "/b")
        expected.testSize = 1
        #expect(split == .split(expected))
        #expect(try BuiltinParameters(.split, values: split.values) == split)

        let missing = #expect(throws: BuiltinParameters.Unreadable.self) {
            try BuiltinParameters(.train, values: ["ratings": .string("/r")])
        }
        #expect(missing?.description == "the train stage's parameter \"model\" is missing")
        let notAChoice = #expect(throws: BuiltinParameters.Unreadable.self) {
            try BuiltinParameters(
                .train, values: ["ratings": .string("/r"), "model": .string("/m"), "algorithm": .string("bpr")])
        }
        #expect(notAChoice?.description == "the train stage's parameter \"algorithm\" is bpr, not one of its choices")
        let notWhole = #expect(throws: BuiltinParameters.Unreadable.self) {
            try BuiltinParameters(
                .evaluate, values: ["model": .string("/m"), "ratings": .string("/t"), "k": .number(2.5)])
        }
        #expect(notWhole?.description == "the evaluate stage's parameter \"k\" is 2.5, not a whole number")
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        var stages: String
        var path: String
        var message: String
        var testDescription: String { "\(path): \(message)" }
    }

    static let refusals: [Refusal] = [
        // ingest
        .init(
            stages: "  - name: x\n    uses: ingest\n    with: {output: /o.csv}\n", path: "stages.x.with.source",
            message: "missing required parameter \"source\" of the ingest stage"),
        .init(
            stages: "  - name: x\n    uses: ingest\n    with: {source: /l, output: /o.csv, format: csv}\n",
            path: "stages.x.with.format", message: "\"csv\" is not one of movielog, ratings"),
        .init(
            stages: "  - name: x\n    uses: ingest\n    with: {source: /l, output: /o.csv, maxSeconds: 0}\n",
            path: "stages.x.with.maxSeconds", message: "must be from 0.001 to 86400, got 0"),
        .init(
            stages: "  - name: x\n    uses: ingest\n    with: {source: /l, output: /o.csv, onBadRow: ignore}\n",
            path: "stages.x.with.onBadRow", message: "\"ignore\" is not one of fail, skip"),
        .init(
            stages: "  - name: x\n    uses: ingest\n    with: {source: \"-\", format: ratings, output: /o.csv}\n",
            path: "stages.x.with.source",
            message:
                "format: ratings reads a ratings file; standard input and Kafka carry the movie log (format: movielog)"),
        .init(
            stages:
                "  - name: x\n    uses: ingest\n    with: {source: /u.data, format: ratings, output: /o.csv, store: /s}\n",
            path: "stages.x.with.store", message: "store is for format: movielog"),
        // split
        .init(
            stages: "  - name: x\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv}\n",
            path: "stages.x.with.test", message: "missing required parameter \"test\" of the split stage"),
        .init(
            stages:
                "  - name: x\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, testSize: 1.5}\n",
            path: "stages.x.with.testSize", message: "must be from 0.0001 to 0.9999, got 1.5"),
        .init(
            stages: "  - name: x\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, seed: x}\n",
            path: "stages.x.with.seed", message: "expected a whole number, got \"x\""),
        .init(
            stages:
                "  - name: x\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, lastN: 3}\n",
            path: "stages.x.with.lastN", message: "lastN goes with mode: temporal"),
        .init(
            stages:
                "  - name: x\n    uses: split\n    with: {ratings: /r.csv, train: /a.csv, test: /b.csv, mode: temporal, future: /f.csv}\n",
            path: "stages.x.with.futureShare",
            message: "futureShare and future go together: the share of the newest ratings and the file they go to"),
        // tune
        .init(
            stages: "  - name: x\n    uses: tune\n    with: {ratings: /r.csv, output: /c.json, space: reg=1}\n",
            path: "stages.x.with.algorithm", message: "missing required parameter \"algorithm\" of the tune stage"),
        .init(
            stages:
                "  - name: x\n    uses: tune\n    with: {ratings: /r.csv, output: /c.json, algorithm: ease, space: \"reg=1,2\", strategy: random}\n",
            path: "stages.x.with.samples", message: "strategy: random needs samples: N, how many combinations to try"),
        .init(
            stages:
                "  - name: x\n    uses: tune\n    with: {ratings: /r.csv, output: /c.json, algorithm: ease, space: \"reg=1,2\", samples: 2}\n",
            path: "stages.x.with.samples", message: "samples goes with strategy: random (grid tries every combination)"),
        .init(
            stages:
                "  - name: x\n    uses: tune\n    with: {ratings: /r.csv, output: /c.json, algorithm: svd, space: \"reg=1,2\", threads: 2}\n",
            path: "stages.x.with.threads", message: "threads is for algorithm: als or ease (SVD trains on one thread)"),
        .init(
            stages:
                "  - name: x\n    uses: tune\n    with: {ratings: /r.csv, output: /c.json, algorithm: ease, space: \"reg=1,2\", timeBudget: 0}\n",
            path: "stages.x.with.timeBudget", message: "must be from 0.001 to 604800, got 0"),
        // train
        .init(
            stages: "  - name: x\n    uses: train\n    with: {ratings: /r.csv, model: /m, factors: -1}\n",
            path: "stages.x.with.factors", message: "must be from 0 to 4096, got -1"),
        .init(
            stages: "  - name: x\n    uses: train\n    with: {ratings: /r.csv, model: /m, algorithm: bpr}\n",
            path: "stages.x.with.algorithm", message: "\"bpr\" is not one of svd, als, ease"),
        .init(
            stages: "  - name: x\n    uses: train\n    with: {ratings: /r.csv, model: /m, watches: /w.csv}\n",
            path: "stages.x.with.watches",
            message: "watches is for algorithm: als or ease (SVD learns from ratings alone)"),
        .init(
            stages: "  - name: x\n    uses: train\n    with: {ratings: /r.csv, model: /m, algorithm: ease, alpha: 3}\n",
            path: "stages.x.with.alpha", message: "alpha is for algorithm: als (EASE weighs every interaction alike)"),
        .init(
            stages: """
                  - name: t
                    uses: tune
                    with: {ratings: /r.csv, output: /c.json, algorithm: als, space: "reg=0.01,0.1"}
                  - name: x
                    uses: train
                    with: {ratings: /r.csv, model: /m, tuned: /c.json}

                """,
            path: "stages.x.with.algorithm",
            message: "the tune stage \"t\" tunes als and this stage trains svd: train the algorithm that was tuned"),
        .init(
            stages: """
                  - name: x
                    uses: train
                    with: {ratings: /r.csv, model: /m, algorithm: als, tuned: /c.json}
                  - name: t
                    uses: tune
                    with: {ratings: /r.csv, output: /c.json, algorithm: als, space: "reg=0.01,0.1"}

                """,
            path: "stages.x.with.tuned",
            message: "the tune stage \"t\" writes /c.json after this stage runs: put it before"),
        .init(
            stages: """
                  - name: t
                    uses: tune
                    with: {ratings: /r.csv, output: /c.json, algorithm: als, space: "reg=0.01,0.1"}
                  - name: x
                    uses: train
                    with: {ratings: /r.csv, model: /m, algorithm: als, tuned: /c.json, reg: 0.5}

                """,
            path: "stages.x.with.reg",
            message:
                "reg is chosen by the tune stage \"t\": leave it out here (set in both, the stage would refuse to run)"),
        // evaluate
        .init(
            stages: "  - name: x\n    uses: evaluate\n    with: {ratings: /t.csv}\n", path: "stages.x.with.model",
            message: "missing required parameter \"model\" of the evaluate stage"),
        .init(
            stages: "  - name: x\n    uses: evaluate\n    with: {model: /m, ratings: /t.csv, k: 0}\n",
            path: "stages.x.with.k", message: "must be from 1 to 1000, got 0"),
        .init(
            stages: "  - name: x\n    uses: evaluate\n    with: {model: /m, ratings: /t.csv, top: 5}\n",
            path: "stages.x.with.top", message: "unknown key \"top\" (allowed: model, ratings, k)"),
    ]

    @Test(arguments: refusals)
    func aBadParameterIsRefusedWithItsPathAndMessage(_ refusal: Refusal) async throws {
        try await withTemporaryDirectory { folder in
            let error = #expect(throws: PipelineValidationError.self) { try Self.stages(refusal.stages, in: folder) }
            let issues = error?.issues ?? []
            #expect(
                issues.contains { $0.path == refusal.path && $0.message == refusal.message },
                "\(issues.map { "\($0.path): \($0.message)" })")
        }
    }
}
