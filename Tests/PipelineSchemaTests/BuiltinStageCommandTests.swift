import PipelineSchema
import Testing

@Suite struct BuiltinStageCommandTests {
    /// A train stage with `algorithm: ease` runs `recengine train --algorithm ease` with the knobs
    /// EASE takes (λ, threads, watches), not ALS's alpha or SVD's learning rate.
    @Test func anEASETrainStagePassesItsParameters() {
        var train = TrainParameters(ratings: "r.csv", model: "m")
        train.algorithm = .ease
        train.reg = 300
        train.threads = 2
        train.watches = "w.csv"
        train.alpha = 10
        let arguments = BuiltinParameters.train(train).command(recengine: "/bin/recengine")
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
        var tune = TuneParameters(ratings: "train.csv", output: "tuned.json", algorithm: .ease, space: "reg=100,500")
        tune.validation = "stratified-user"
        tune.definitions = "microsoft-recommenders"
        tune.threads = 2
        tune.timeBudget = 30
        var arguments = BuiltinParameters.tune(tune).command(recengine: "/bin/recengine")
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(Array(arguments.prefix(2)) == ["/bin/recengine", "tune"])
        #expect(value("--ratings") == "train.csv" && value("--out") == "tuned.json")
        #expect(value("--space") == "reg=100,500" && value("--validation") == "stratified-user")
        #expect(
            value("--definitions") == "microsoft-recommenders" && value("--time-budget") == "30"
                && value("--threads") == "2")
        #expect(value("--last-n") == nil && value("--samples") == nil)
        #expect(arguments.suffix(2) == ["--output", "json"])

        tune.validation = "temporal"
        tune.lastN = 5
        tune.strategy = "random"
        tune.samples = 3
        arguments = BuiltinParameters.tune(tune).command(recengine: "/bin/recengine")
        #expect(value("--last-n") == "5" && value("--samples") == "3" && value("--strategy") == "random")
    }

    /// A train stage that reads a tune stage's choice passes it as `--tuned`.
    @Test func aTunedTrainStagePassesTheChoice() {
        var train = TrainParameters(ratings: "r.csv", model: "m")
        train.tuned = "tuned.json"
        train.lr = nil
        train.alpha = nil
        let arguments = BuiltinParameters.train(train).command(recengine: "/bin/recengine")
        func value(_ flag: String) -> String? { arguments.firstIndex(of: flag).map { arguments[$0 + 1] } }
        #expect(value("--tuned") == "tuned.json")
        #expect(value("--lr") == nil && value("--reg") == nil, "left to the tune's choice or the default")
    }

    /// A ratings import passes what to do with a bad row and none of the movie log's options; a
    /// movie log ingest passes its store, its bounds and the last release's rating shares.
    @Test func anIngestStagePassesItsFormatsOptions() {
        var ingest = IngestParameters(source: "/u.data", output: "/o.csv")
        ingest.format = .ratings
        ingest.onBadRow = .fail
        #expect(
            BuiltinParameters.ingest(ingest).command(
                recengine: "/bin/recengine", baselineShares: [0.2, 0.2, 0.2, 0.2, 0.2])
                == [
                    "/bin/recengine", "ingest", "--source", "/u.data", "--format", "ratings", "--out", "/o.csv",
                    "--on-bad-row", "fail", "--output", "json",
                ])
        ingest = IngestParameters(source: "/log", output: "/o.csv")
        ingest.store = "/s"
        ingest.maxSeconds = 2.5
        #expect(
            BuiltinParameters.ingest(ingest).command(
                recengine: "/bin/recengine", baselineShares: [0.1, 0.2, 0.3, 0.2, 0.2])
                == [
                    "/bin/recengine", "ingest", "--source", "/log", "--format", "movielog", "--out", "/o.csv",
                    "--store", "/s", "--mode", "stream", "--group", "orchestrate-ingest", "--max-records", "0",
                    "--max-seconds", "2.5", "--baseline-shares", "0.1,0.2,0.3,0.2,0.2", "--output", "json",
                ])
    }
}
