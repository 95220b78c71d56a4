import Orchestrator
import Testing

@Suite struct BuiltinStageCommandTests {
    /// A train stage with `algorithm: ease` runs `recengine train --algorithm ease` with the knobs
    /// EASE takes (λ, threads, watches), not ALS's alpha or SVD's learning rate.
    @Test func anEASETrainStagePassesItsParameters() {
        let arguments = BuiltinStage.train.command(
            recengine: "/bin/recengine",
            parameters: [
                "ratings": .string("r.csv"), "model": .string("m"), "algorithm": .string("ease"), "reg": .number(300), "threads": .integer(2),
                "watches": .string("w.csv"), "alpha": .number(10), "lr": .number(0.005), "initStd": .number(0.1), "seed": .integer(0),
            ])
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(value("--algorithm") == "ease")
        #expect(value("--reg") == "300")
        #expect(value("--threads") == "2")
        #expect(value("--watches") == "w.csv")
        #expect(value("--alpha") == nil && value("--lr") == nil && value("--init-std") == nil)
        #expect(arguments.suffix(2) == ["--output", "json"])
    }
}
