import Foundation
import OrchestratorSupport
import TestSupport
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// A cached release stays cached across versions of the controller: for the same pipeline, the
/// stages' fingerprints (what the cache compares with the last successful run), their commands,
/// the plan's JSON and its `with:` lines are what they were before the built-ins' parameters were
/// typed. The figures below were computed by the controller before that change.
@Suite struct StageFingerprintPinTests {
    static let pipeline = """
        version: 1
        name: pinned
        history: releases/history.jsonl
        stages:
          - name: ingest
            uses: ingest
            with: {source: /data/log, output: /data/ratings.csv, watches: /data/watches.csv, mode: historical}
          - name: import
            uses: ingest
            with: {source: /data/u.data, format: ratings, output: /data/imported.csv, onBadRow: fail}
          - name: kafka
            uses: ingest
            with: {source: "kafka://127.0.0.1:9092/movielog", output: /data/k.csv, maxRecords: 500, maxSeconds: 2.5}
          - name: split
            uses: split
            with: {ratings: /data/ratings.csv, train: /data/train.csv, test: /data/test.csv, testSize: 0.25, seed: 7}
          - name: temporal
            uses: split
            with:
              ratings: /data/ratings.csv
              train: /data/t-train.csv
              test: /data/t-test.csv
              mode: temporal
              lastN: 3
              futureShare: 0.1
              future: /data/future.csv
          - name: tune
            uses: tune
            with:
              ratings: /data/train.csv
              output: /data/tuned.json
              algorithm: als
              space: "factors=8,16;reg=0.01,0.1"
              strategy: random
              samples: 3
              validation: temporal
              lastN: 2
              timeBudget: 60
          - name: train
            uses: train
            with: {ratings: /data/train.csv, model: /data/models/svd, factors: 8, epochs: 3, lr: 0.01, reg: 0.05}
          - name: tuned
            uses: train
            with: {ratings: /data/train.csv, model: /data/models/als, algorithm: als, tuned: /data/tuned.json}
          - name: ease
            uses: train
            with:
              ratings: /data/train.csv
              model: /data/models/ease
              algorithm: ease
              reg: 50
              threads: 2
              watches: /data/watches.csv
              version: v7
          - name: evaluate
            uses: evaluate
            with: {model: /data/models/svd, ratings: /data/test.csv, k: 20}

        """

    static func plan(in folder: String) throws -> RunPlan {
        try pipeline.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
        let pipeline = try PipelineLoader(environment: [:]).load(folder + "/p.yml")
        return try Planner(
            pipeline: pipeline, options: RunOptions(recengine: "/bin/recengine"), records: [], runtime: nil
        )
        .plan(releaseID: "rel-1", live: nil, recovery: nil)
    }

    /// One input with a digest, as a record stores it.
    static var inputs: [ArtifactDigest] {
        get throws {
            let json = #"[{"path": "/data/train.csv", "sha256": "\#(String(repeating: "ab", count: 32))"}]"#
            return try JSONDecoder().decode([ArtifactDigest].self, from: Data(json.utf8))
        }
    }

    /// Each stage's fingerprint, as the controller computed it before the parameters were typed.
    static let fingerprints: [String: String] = [
        "ingest": "09acce493a50507a1d25e23ae22dd621e5d0a43c14c326b2ef00e936c667ede5",
        "import": "af2f30c95c69044c992573ef0a6633f19cdbb886c9a5c042d28c1c21ad56af45",
        "kafka": "febae3b345a8fa8e1d81489edd31faac5c5bed8cdddb44d587033b4280b535a2",
        "split": "7cecbbb6d0133b7cc8b829e7293f0aba39d7f6afb2dba407373d02185ed1fe60",
        "temporal": "9e63f1ce629be641b6adfb9e617847b56a6e792da034a9f5ebcd44671a1f0aec",
        "tune": "0159d7f14fa55c9ba922e202748d2f69f1d0a222174604fdf0c09395a9c8b37b",
        "train": "26475a18e45abda70bfac2014aa5fe526f870c3daf2e4df02f2010fc3f95f198",
        "tuned": "cb0ea8ececf999dfc0df9fde43b1141ed76fa6dd75fba901eb672c97b0120a55",
        "ease": "bd48bf6fd407bc68d0a94e1cc2f8fe6a4cafb7b96ea16f3f351d5c2a3bbf536f",
        "evaluate": "e0d85a94355040bedbaf98d995149e4e9b99df3bd8bbe0788a61668bfec544ed",
    ]

    @Test func theStagesFingerprintsAreWhatTheyWere() async throws {
        try await withTemporaryDirectory { folder in
            let plan = try Self.plan(in: folder)
            var found: [String: String] = [:]
            for stage in plan.stages { found[stage.name] = Planner.fingerprint(of: stage, inputs: try Self.inputs) }
            #expect(found == Self.fingerprints)
        }
    }

    /// The stages as the plan's JSON stores them (SHA-256 of their encoding with sorted keys).
    static let stagesJSON = "ff7515f5e1d609e508ec13b20e06e2c20348994ec19310d2a4a5504dba1108d1"

    @Test func thePlannedStagesEncodeAsTheyDid() async throws {
        try await withTemporaryDirectory { folder in
            let plan = try Self.plan(in: folder)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let digest = sha256Hex(try encoder.encode(plan.stages))
            #expect(digest == Self.stagesJSON)
        }
    }

    /// The commands and the `with:` lines `--dry-run` prints.
    static let renderedLines: [String] = [
        "     command: /bin/recengine ingest --source /data/log --format movielog --out /data/ratings.csv --store /data/ingest-store --watches /data/watches.csv --mode historical --group orchestrate-ingest --max-records 0 --max-seconds 300 --output json",
        "     with: format=movielog group=orchestrate-ingest maxRecords=0 maxSeconds=300 mode=historical onBadRow=skip output=/data/ratings.csv source=/data/log store=/data/ingest-store watches=/data/watches.csv",
        "     command: /bin/recengine ingest --source /data/u.data --format ratings --out /data/imported.csv --on-bad-row fail --output json",
        "     with: format=ratings group=orchestrate-ingest maxRecords=0 maxSeconds=300 mode=stream onBadRow=fail output=/data/imported.csv source=/data/u.data",
        "     command: /bin/recengine ingest --source kafka://127.0.0.1:9092/movielog --format movielog --out /data/k.csv --store /data/ingest-store --mode stream --group orchestrate-ingest --max-records 500 --max-seconds 2.5 --output json",
        "     with: format=movielog group=orchestrate-ingest maxRecords=500 maxSeconds=2.5 mode=stream onBadRow=skip output=/data/k.csv source=kafka://127.0.0.1:9092/movielog store=/data/ingest-store",
        "     command: /bin/recengine split --ratings /data/ratings.csv --train /data/train.csv --test /data/test.csv --test-size 0.25 --seed 7 --mode random --output json",
        "     with: futureShare=0 lastN=0 mode=random ratings=/data/ratings.csv seed=7 test=/data/test.csv testSize=0.25 train=/data/train.csv",
        "     command: /bin/recengine split --ratings /data/ratings.csv --train /data/t-train.csv --test /data/t-test.csv --test-size 0.2 --seed 42 --mode temporal --last-n 3 --future-share 0.1 --future /data/future.csv --output json",
        "     with: future=/data/future.csv futureShare=0.1 lastN=3 mode=temporal ratings=/data/ratings.csv seed=42 test=/data/t-test.csv testSize=0.2 train=/data/t-train.csv",
        "     command: /bin/recengine tune --ratings /data/train.csv --out /data/tuned.json --algorithm als --space 'factors=8,16;reg=0.01,0.1' --strategy random --samples 3 --validation temporal --validation-share 0.25 --last-n 2 --seed 42 --k 10 --metric ndcg_at_k --definitions recengine --time-budget 60 --threads 1 --output json",
        "     with: algorithm=als definitions=recengine k=10 lastN=2 metric=ndcg_at_k output=/data/tuned.json ratings=/data/train.csv samples=3 seed=42 space=factors=8,16;reg=0.01,0.1 strategy=random threads=1 timeBudget=60 validation=temporal validationShare=0.25",
        "     command: /bin/recengine train --ratings /data/train.csv --out /data/models/svd --algorithm svd --factors 8 --epochs 3 --reg 0.05 --lr 0.01 --init-std 0.1 --seed 0 --output json",
        "     with: algorithm=svd alpha=10 epochs=3 factors=8 initStd=0.1 lr=0.01 model=/data/models/svd ratings=/data/train.csv reg=0.05 seed=0 threads=1",
        "     command: /bin/recengine train --ratings /data/train.csv --out /data/models/als --algorithm als --threads 1 --seed 0 --tuned /data/tuned.json --output json",
        "     with: algorithm=als initStd=0.1 model=/data/models/als ratings=/data/train.csv seed=0 threads=1 tuned=/data/tuned.json",
        "     command: /bin/recengine train --ratings /data/train.csv --out /data/models/ease --algorithm ease --reg 50 --threads 2 --watches /data/watches.csv --seed 0 --model-version v7 --output json",
        "     with: algorithm=ease alpha=10 initStd=0.1 lr=0.005 model=/data/models/ease ratings=/data/train.csv reg=50 seed=0 threads=2 version=v7 watches=/data/watches.csv",
        "     command: /bin/recengine evaluate --model /data/models/svd --ratings /data/test.csv --k 20 --output json",
        "     with: k=20 model=/data/models/svd ratings=/data/test.csv",
    ]

    @Test func theDryRunShowsTheSameCommandsAndParameters() async throws {
        try await withTemporaryDirectory { folder in
            let lines = try Self.plan(in: folder).rendered().split(separator: "\n").map(String.init).filter {
                $0.hasPrefix("     command: ") || $0.hasPrefix("     with: ")
            }
            #expect(lines == Self.renderedLines)
        }
    }
}
