import EngineAPI
import Foundation
import Orchestrator
import PipelineSchema
import Provenance
import RecEngine
import RecEngineContract
import StrictYAML
import Testing

@Suite struct IngestStageTests {
    /// Movie log lines for numeric users rating movie slugs; `rating` fixes every rating when given.
    static func logLines(
        users: Range<Int>, malformedShare: Double = 0, rating: Int? = nil, seed: UInt64 = 1
    ) -> [String] {
        MovieLogGenerator(malformedShare: malformedShare, seed: seed).lines(
            for: movieLogRatings(users: users, rating: rating, seed: seed))
    }

    static let pipeline = """
        version: 1
        name: unit
        history: releases/history.jsonl
        stages:
          - name: ingest
            uses: ingest
            with: {source: log, output: data/ratings.csv, watches: data/watches.csv}
            gate:
              rejected_share: {max: 0.05}
              rating_psi: {max: 0.25}
          - name: train
            uses: train
            with: {ratings: data/ratings.csv, model: models/m, factors: 4, epochs: 3}
        """

    @Test func reportsCountsIntoProvenanceAndAlwaysReadsWhatIsNew() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            let lines = Self.logLines(users: 1..<40, malformedShare: 0.01)
            try write(lines.joined(separator: "\n") + "\n", to: folder + "/log/part-1.log")
            let (first, progress) = try await runPipeline(folder + "/p.yml")
            let record = try #require(first.record)
            #expect(record.outcome == .succeeded, "\(progress)")
            let ingest = try #require(record.stages[0].ingest)
            #expect(ingest.lines == lines.count)
            #expect(ingest.ratingsNew == 390)
            #expect(ingest.positions[folder + "/log/part-1.log"] == Int64(read(folder + "/log/part-1.log").utf8.count))
            #expect(record.stages[0].metrics["ratings_new"] == 390)
            #expect(record.stages[0].outputs.map(\.path).contains(folder + "/data/watches.csv"))
            #expect(
                progress.contains {
                    $0.contains("read \(lines.count) lines from \(folder)/log (stream): 390 new ratings")
                })

            // Nothing new: the ingest still runs (never cached), reads nothing, and the train is cached.
            let (second, progress2) = try await runPipeline(folder + "/p.yml")
            #expect(second.record?.stages.map(\.status) == [.succeeded, .cached], "\(progress2)")
            #expect(second.record?.stages[0].ingest?.lines == 0)
            #expect(progress2.contains { $0.contains("a movie log ingest always reads what is new") })
        }
    }

    @Test func aDataQualityGateStopsThePipelineBeforeTraining() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            try write(Self.logLines(users: 1..<40).joined(separator: "\n") + "\n", to: folder + "/log/part-1.log")
            #expect(try await runPipeline(folder + "/p.yml").0.record?.outcome == .succeeded)

            // Every new rating a 5: the distribution shifts against the last succeeded release's data.
            try write(
                Self.logLines(users: 40..<80, rating: 5).joined(separator: "\n") + "\n", to: folder + "/log/part-2.log")
            let (shifted, progress) = try await runPipeline(folder + "/p.yml")
            let record = try #require(shifted.record)
            #expect(record.outcome == .failed)
            #expect(shifted.exitCode == 1)
            #expect(record.stages.map(\.status) == [.failed, .notRun])
            let psi = try #require(record.stages[0].gates.first { $0.metric == "rating_psi" })
            #expect(!psi.passed)
            #expect((psi.value ?? 0) > 1)
            #expect(record.stages[0].ingest?.ratingsNew == 400, "the numbers are in the provenance record")
            #expect(progress.contains { $0.contains("gate rating_psi <= 0.25") && $0.contains("FAILED") })

            // Malformed lines over the bound: the rejected share stops it too.
            try write(
                Self.logLines(users: 80..<90, malformedShare: 0.3).joined(separator: "\n") + "\n",
                to: folder + "/log/part-3.log")
            let (rejected, _) = try await runPipeline(folder + "/p.yml")
            let share = try #require(rejected.record?.stages[0].gates.first { $0.metric == "rejected_share" })
            #expect(!share.passed)
        }
    }

    @Test func aRatingsFileStaysAFileAndKafkaNeedsTheMovieLogFormat() async throws {
        try await withTemporaryDirectory { folder in
            let text = """
                version: 1
                name: unit
                stages:
                  - name: ingest
                    uses: ingest
                    with: {source: "kafka://localhost:9092/movielog2", format: ratings, output: r.csv, store: s}
                  - name: other
                    uses: ingest
                    with: {source: "kafka://localhost:9092", output: r2.csv}
                """
            try write(text, to: folder + "/p.yml")
            #expect {
                try PipelineLoader().load(folder + "/p.yml")
            } throws: { error in
                let message = "\(error)"
                return message.contains("format: ratings reads a ratings file")
                    && message.contains("store is for format: movielog")
                    && message.contains("a Kafka source needs brokers and a topic")
            }
        }
    }
}
