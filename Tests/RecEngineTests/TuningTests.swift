import Foundation
import RecEngineContract
import Testing

@testable import RecEngine

@Suite struct TuningTests {
    static let training = RatingsFile(
        path: "train.csv", ratings: clusteredInteractions(users: 120, items: 80, perUser: 16, seed: 4), format: .csv,
        sha256: "")

    /// The same ratings, space and seed choose the same parameters with the same scores; the
    /// choice is the best trial's.
    @Test func theChoiceIsReproducibleForAFixedSeed() throws {
        let space = try SearchSpace(algorithm: "ease", parsing: "reg=0.5,5,50,500,5000")
        let rankingProtocol = TuningProtocol(validation: "stratified-user", validationShare: 0.25, seed: 7, k: 10)
        let first = try Tuning.run(Self.training, space: space, protocol: rankingProtocol, threads: 2)
        let second = try Tuning.run(Self.training, space: space, protocol: rankingProtocol, threads: 1)
        #expect(first.trials.map(\.score) == second.trials.map(\.score))
        #expect(first.chosen == second.chosen)
        #expect(first.trials.count == 5)
        #expect(!first.stoppedByBudget)
        #expect(first.score == first.trials.map(\.score).max())
        #expect(Set(first.trials.map(\.score)).count > 1, "λ changes the ranking: \(first.trials)")
        #expect(first.fitRatings + first.validationRatings == Self.training.ratings.count)
    }

    /// What a tune stage reads: `recengine tune --output json` prints the chosen parameters under
    /// the names `train` takes, the score, every trial and the protocol; twice the same.
    @Test func theCommandPrintsItsChoiceAsJSON() async throws {
        try await withTemporaryDirectory { folder in
            try RatingsFile.writeCSV(Self.training.ratings, to: folder + "/train.csv")
            let arguments = [
                "tune", "--ratings", "train.csv", "--algorithm", "ease", "--space", "reg=1,20,400", "--validation",
                "stratified-item",
                "--seed", "3", "--output", "json",
            ]
            let first = try await runCommand(recengineBinary, arguments, in: folder)
            try #require(first.status == 0, "\(first.stderr)")
            let second = try await runCommand(recengineBinary, arguments, in: folder)
            let report = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
            let chosen = try #require(report["chosen"] as? [String: Double])
            #expect(chosen.keys.sorted() == ["reg"])
            #expect([1, 20, 400].contains(chosen["reg"] ?? -1))
            #expect((report["trials"] as? [Any])?.count == 3)
            #expect((report["protocol"] as? [String: Any])?["validation"] as? String == "stratified-item")
            #expect((report["metrics"] as? [String: Double])?["tune_trials"] == 3)
            let again = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any]
            #expect(again?["chosen"] as? [String: Double] == chosen)
            #expect(first.stderr.contains("reg=400: ndcg_at_k"), "progress per trial on stderr: \(first.stderr)")
        }
    }

    /// A trial whose score is not a number is written null (a plain JSONEncoder threw on it, so
    /// `tune --output json` failed) and read back as NaN; a search where every trial scored NaN
    /// chooses nothing and says why, and one with a number chooses it.
    @Test func aTrialThatScoredNaNIsWrittenNullAndAllNaNChoosesNothing() throws {
        let space = try SearchSpace(algorithm: "ease", parsing: "reg=1,10")
        let trials = [
            TuningReport.Trial(parameters: ["reg": 1], score: .nan, fitSeconds: 0.1),
            TuningReport.Trial(parameters: ["reg": 10], score: .nan, fitSeconds: 0.2),
        ]
        let report = TuningReport(
            algorithm: "ease", space: space, protocol: TuningProtocol(), chosen: ["reg": 1], score: .nan,
            trials: trials, candidates: 2,
            stoppedByBudget: false, budgetSeconds: nil, fitRatings: 10, validationRatings: 5)
        let data = try JSONEncoder().encode(report.trials)
        #expect(String(decoding: data, as: UTF8.self).contains("\"score\":null"))
        let decoded = try JSONDecoder().decode([TuningReport.Trial].self, from: data)
        #expect(decoded.allSatisfy { $0.score.isNaN } && decoded.map(\.parameters) == trials.map(\.parameters))

        let error = #expect(throws: RecEngineError.self) { try Tuning.choose(trials[...], metric: "ndcg_at_k") }
        #expect(error?.code == .nonFiniteMetric)
        #expect(
            "\(error.map { "\($0)" } ?? "")".contains(
                "no candidate scored a number: ndcg_at_k was not a finite number for each of the 2 trials"))
        let scored = trials + [TuningReport.Trial(parameters: ["reg": 100], score: 0.2, fitSeconds: 0.3)]
        #expect(try Tuning.choose(scored[...], metric: "ndcg_at_k").parameters == ["reg": 100])
    }

    @Test func randomSamplingDependsOnTheSeedAlone() throws {
        let space = try SearchSpace(
            algorithm: "als", parsing: "factors=4,8,16;reg=0.01,0.1,1", strategy: "random", samples: 4)
        #expect(space.candidates(seed: 1) == space.candidates(seed: 1))
        #expect(space.candidates(seed: 1).count == 4)
        #expect(
            try SearchSpace(algorithm: "als", parsing: "factors=4,8,16;reg=0.01,0.1,1").candidates(seed: 1).count == 9)
        #expect(space.candidates(seed: 1) != space.candidates(seed: 2))
    }

    /// No candidate starts once the budget is spent; the first always runs.
    @Test func theTimeBudgetStopsTheSearch() throws {
        let space = try SearchSpace(algorithm: "ease", parsing: "reg=1,10,100")
        let report = try Tuning.run(Self.training, space: space, protocol: TuningProtocol(), budget: .zero)
        #expect(report.trials.count == 1)
        #expect(report.stoppedByBudget)
        #expect(report.candidates == 3)
    }

    @Test(arguments: [
        ("ease", "factors=10", "NAME one of reg for ease"), ("svd", "reg=a", "must be numbers"),
        ("bpr", "reg=1", "must be one of svd, als, ease"),
        ("ease", "", "names no parameter"), ("ease", "reg=1;reg=2", "names reg twice"),
    ])
    func aBadSpaceIsRefused(algorithm: String, text: String, message: String) {
        let error = #expect(throws: RecEngineError.self) { try SearchSpace(algorithm: algorithm, parsing: text) }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }

    /// Each item keeps `round(0.75 * count)` of its ratings for training, halves to even.
    @Test func aStratifiedSplitKeepsEachGroupsShare() throws {
        // Group 0: 2 rows (1.5 -> 2), group 1: 6 rows (4.5 -> 4), group 2: 4 rows (3), group 3: 1 row (0.75 -> 1).
        let groups: [Int32] = [0, 1, 1, 2, 0, 1, 2, 1, 2, 1, 2, 1, 3]
        let split = try Split.stratified(groups: groups, testSize: 0.25, seed: 3)
        func kept(_ group: Int32) -> Int { split.train.count { groups[$0] == group } }
        let kepts: [Int] = [kept(0), kept(1), kept(2), kept(3)]
        #expect(kepts == [2, 4, 3, 1])
        #expect(split.train == split.train.sorted())
        #expect(Set(split.train).isDisjoint(with: split.test))
        #expect(split.train.count + split.test.count == groups.count)
        let again = try Split.stratified(groups: groups, testSize: 0.25, seed: 3)
        #expect(again.train == split.train && again.test == split.test)
    }

    /// `tune --out` keeps the choice alone; `train --tuned` trains with it, filling what the
    /// command line leaves unset, and refuses a parameter set in both, another algorithm's
    /// choice, and a file that is not a choice, without reading a FIFO.
    @Test func trainTakesTheChoiceOfATuneReport() async throws {
        try await withTemporaryDirectory { folder in
            try RatingsFile.writeCSV(Self.training.ratings, to: folder + "/train.csv")
            let tune = try await runCommand(
                recengineBinary,
                [
                    "tune", "--ratings", "train.csv", "--algorithm", "ease", "--space", "reg=2,30,700", "--seed", "5",
                    "--out", "tuned.json",
                ],
                in: folder)
            try #require(tune.status == 0, "\(tune.stderr)")
            let choice = try TuningChoice.load(path: folder + "/tuned.json")
            let reg = try #require(choice.parameters["reg"])
            #expect(choice.algorithm == "ease" && choice.parameters.count == 1 && [2, 30, 700].contains(reg))
            // Another search that makes the same choice writes the same file.
            let before = try Data(contentsOf: URL(fileURLWithPath: folder + "/tuned.json"))
            let again = try await runCommand(
                recengineBinary,
                [
                    "tune", "--ratings", "train.csv", "--algorithm", "ease", "--space", "reg=\(reg)", "--seed", "9",
                    "--out", "tuned.json",
                ],
                in: folder)
            try #require(again.status == 0, "\(again.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/tuned.json")) == before)

            let train = try await runCommand(
                recengineBinary,
                ["train", "--ratings", "train.csv", "--algorithm", "ease", "--tuned", "tuned.json", "--out", "m"],
                in: folder)
            try #require(train.status == 0, "\(train.stderr)")
            #expect(try ModelDirectory.readManifest(of: folder + "/m").easeParameters?.regularization == reg)

            func refusal(_ arguments: [String]) async throws -> String {
                let result = try await runCommand(
                    recengineBinary, ["train", "--ratings", "train.csv", "--out", "m2"] + arguments, in: folder)
                #expect(result.status == 2, "\(arguments): \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: folder + "/m2"), "nothing is trained")
                return result.stderr
            }
            #expect(
                try await refusal(["--algorithm", "ease", "--tuned", "tuned.json", "--reg", "3"]).contains(
                    "tuned.json: reg is set here and also chosen by the tune"))
            #expect(
                try await refusal(["--algorithm", "als", "--tuned", "tuned.json"]).contains(
                    "the tune chose parameters for ease, not als"))
            try write("{\"parameters\": {}}", to: folder + "/other.json")
            #expect(
                try await refusal(["--algorithm", "ease", "--tuned", "other.json"]).contains(
                    "other.json: not a tune choice (it has no algorithm)"))
            #expect(mkfifo(folder + "/fifo", 0o600) == 0)
            #expect(try await refusal(["--algorithm", "ease", "--tuned", "fifo"]).contains("not a regular file"))
        }
    }

    /// The parameters a train takes from a choice: all of them, unless the choice is for another
    /// algorithm, names what that algorithm does not take, or names what the caller set.
    @Test func aChoiceIsCheckedAgainstWhatTheTrainSets() throws {
        var choice = TuningChoice(algorithm: "als", parameters: ["factors": 16, "alpha": 10])
        #expect(
            try choice.parameters(for: "als", given: ["reg", "epochs"], location: "t.json") == [
                "factors": 16, "alpha": 10,
            ])
        let twice = #expect(throws: RecEngineError.self) {
            try choice.parameters(for: "als", given: ["alpha"], location: "t.json")
        }
        #expect(twice?.message.contains("alpha is set here and also chosen") == true && twice?.location == "t.json")
        #expect(throws: RecEngineError.self) { try choice.parameters(for: "svd", given: [], location: "t.json") }
        choice.parameters["factors"] = 16.5
        let fraction = #expect(throws: RecEngineError.self) {
            try choice.parameters(for: "als", given: [], location: "t.json")
        }
        #expect(fraction?.message.contains("factors = 16.5, not a whole finite number") == true)
        choice.parameters = ["lr": 0.01]
        let foreign = #expect(throws: RecEngineError.self) {
            try choice.parameters(for: "als", given: [], location: "t.json")
        }
        #expect(foreign?.message.contains("chose lr, which als does not take") == true)
    }

    /// Successive halving: every combination for a ninth of the epochs, the best third of them
    /// for a third, the best of those for all; the choice is the last round's, the same twice.
    @Test func successiveHalvingTrainsTheBestLonger() throws {
        let space = try SearchSpace(
            algorithm: "als", parsing: "factors=2,4,8;reg=0.01,0.3,10;epochs=9", strategy: "halving")
        let rankingProtocol = TuningProtocol(validation: "stratified-user", seed: 3)
        let report = try Tuning.run(Self.training, space: space, protocol: rankingProtocol)
        #expect(report.trials.map { $0.parameters["epochs"] } == Array(repeating: 1, count: 9) + [3, 3, 3, 9])
        let first = report.trials[0..<9]
        let topThree = first.sorted { $0.score > $1.score }.prefix(3).map {
            $0.parameters.filter { $0.key != "epochs" }
        }
        let second = report.trials[9..<12].map { $0.parameters.filter { $0.key != "epochs" } }
        #expect(Set(second) == Set(topThree), "the best third goes on")
        let bestOfSecond = report.trials[9..<12].max { $0.score < $1.score }?.parameters.filter { $0.key != "epochs" }
        #expect(report.trials[12].parameters.filter { $0.key != "epochs" } == bestOfSecond)
        #expect(report.chosen == report.trials[12].parameters && report.chosen["epochs"] == 9)
        let again = try Tuning.run(Self.training, space: space, protocol: rankingProtocol)
        #expect(
            again.trials.map(\.parameters) == report.trials.map(\.parameters)
                && again.trials.map(\.score) == report.trials.map(\.score))

        // Out of budget at once: the first trial is the choice, at the epochs it was trained for.
        let stopped = try Tuning.run(Self.training, space: space, protocol: rankingProtocol, budget: .zero)
        #expect(stopped.trials.count == 1 && stopped.stoppedByBudget && stopped.chosen == stopped.trials[0].parameters)
    }

    @Test(arguments: [
        ("ease", "reg=1,2", "it is for svd and als"),
        ("als", "reg=1;epochs=5,10", "the one number of epochs the last round trains for"),
    ])
    func successiveHalvingNeedsEpochs(algorithm: String, text: String, message: String) {
        let error = #expect(throws: RecEngineError.self) {
            try SearchSpace(algorithm: algorithm, parsing: text, strategy: "halving")
        }
        #expect(error?.message.contains(message) == true, "\(error?.message ?? "")")
    }
}
