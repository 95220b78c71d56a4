import PipelineSchema
import Testing

@Suite struct BuiltinStageCommandTests {
    /// A train stage with `algorithm: ease` runs `recengine train --algorithm ease` with the knobs
    /// EASE takes (λ, threads, watches), not ALS's alpha or SVD's learning rate.
    @Test func anEASETrainStagePassesItsParameters() {
        let arguments = BuiltinStage.train.command(
            recengine: "/bin/recengine",
            parameters: [
                "ratings": .string("r.csv"), "model": .string("m"), "algorithm": .string("ease"), "reg": .number(300),
                "threads": .integer(2),
                "watches": .string("w.csv"), "alpha": .number(10), "lr": .number(0.005), "initStd": .number(0.1),
                "seed": .integer(0),
            ])
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(value("--algorithm") == "ease")
        #expect(value("--reg") == "300")
        #expect(value("--threads") == "2")
        #expect(value("--watches") == "w.csv")
        #expect(value("--alpha") == nil && value("--lr") == nil && value("--init-std") == nil)
        #expect(arguments.suffix(2) == ["--output", "json"])
    }

    /// A tune stage runs `recengine tune` with its space and protocol and writes its choice to
    /// `output` (`--out`); `--last-n` only with a temporal validation split.
    @Test func aTuneStagePassesItsSpaceAndProtocol() {
        var parameters: [String: ParameterValue] = [
            "ratings": .string("train.csv"), "output": .string("tuned.json"), "algorithm": .string("ease"),
            "space": .string("reg=100,500"),
            "strategy": .string("grid"), "validation": .string("stratified-user"), "validationShare": .number(0.25),
            "lastN": .integer(0),
            "seed": .integer(42), "k": .integer(10), "metric": .string("ndcg_at_k"),
            "definitions": .string("microsoft-recommenders"),
            "threads": .integer(2), "timeBudget": .number(30),
        ]
        var arguments = BuiltinStage.tune.command(recengine: "/bin/recengine", parameters: parameters)
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(Array(arguments.prefix(2)) == ["/bin/recengine", "tune"])
        #expect(value("--ratings") == "train.csv" && value("--out") == "tuned.json")
        #expect(value("--space") == "reg=100,500" && value("--validation") == "stratified-user")
        #expect(
            value("--definitions") == "microsoft-recommenders" && value("--time-budget") == "30"
                && value("--threads") == "2")
        #expect(value("--last-n") == nil && value("--samples") == nil)
        #expect(arguments.suffix(2) == ["--output", "json"])

        parameters["validation"] = .string("temporal")
        parameters["lastN"] = .integer(5)
        parameters["strategy"] = .string("random")
        parameters["samples"] = .integer(3)
        arguments = BuiltinStage.tune.command(recengine: "/bin/recengine", parameters: parameters)
        #expect(value("--last-n") == "5" && value("--samples") == "3" && value("--strategy") == "random")
    }

    /// A train stage that reads a tune stage's choice passes it as `--tuned`.
    @Test func aTunedTrainStagePassesTheChoice() {
        let arguments = BuiltinStage.train.command(
            recengine: "/bin/recengine",
            parameters: [
                "ratings": .string("r.csv"), "model": .string("m"), "algorithm": .string("svd"),
                "tuned": .string("tuned.json"), "seed": .integer(0),
            ])
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(value("--tuned") == "tuned.json")
        #expect(value("--lr") == nil && value("--reg") == nil, "left to the tune's choice or the default")
    }
}
