import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import Testing

/// A stage metric that is not a number (null in the stage's JSON: NaN) fails its gate and is
/// still recorded: the history gets the record, with "nan" where the number would be (issue 13).
@Suite struct NonFiniteMetricTests {
    static let pipeline = """
        version: 1
        name: nan
        history: h.jsonl
        stages:
          - name: score
            run: [/bin/sh, -c, 'echo "{\\"rmse\\": null, \\"loss\\": 0.5}" > m.json']
            metrics: m.json
            gate:
              rmse: {max: 1}
              loss: {max: 1}
        """

    @Test func aNaNMetricFailsItsGateAndTheRecordIsWritten() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            let (result, progress) = try await runPipeline(folder + "/p.yml")
            #expect(result.exitCode == 1)
            let stage = try #require(result.record?.stages.first)
            #expect(stage.status == .failed)
            #expect(stage.error == "gate rmse <= 1 failed: the stage reported rmse = nan, not a finite number")
            #expect(stage.gates.map(\.passed) == [false, true])
            #expect(progress.contains { $0.contains("gate rmse <= 1: nan FAILED") })

            let history = ReleaseHistory(path: folder + "/h.jsonl")
            let line = try #require(try history.lines().first)
            let text = String(decoding: line.bytes, as: UTF8.self)
            #expect(text.contains(#""metrics":{"loss":0.5,"rmse":"nan"}"#), "\(text)")
            let recorded = try #require(line.record)
            #expect(recorded.outcome == .failed)
            #expect(recorded.stages.first?.metrics["rmse"]?.isNaN == true)
            #expect(recorded.stages.first?.metrics["loss"] == 0.5)
            #expect(try history.verify().isEmpty)
        }
    }

    @Test(arguments: [(Double.nan, "nan"), (.infinity, "inf"), (-.infinity, "-inf")])
    func nonFiniteNumbersRoundTripThroughTheRecord(value: Double, text: String) async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            var record = try #require(try await runPipeline(folder + "/p.yml").0.record)
            record.stages[0].metrics["loss"] = value
            record.stages[0].durationSeconds = value
            let line = try record.jsonLine()
            #expect(String(decoding: line, as: UTF8.self).contains(#""loss":"\#(text)""#))
            let decoded = try ReleaseRecord.decode(line)
            for number in [decoded.stages[0].metrics["loss"], decoded.stages[0].durationSeconds] {
                #expect(number.map { value.isNaN ? $0.isNaN : $0 == value } == true)
            }
        }
    }

    @Test func recordsWrittenBeforeWithPlainNumbersReadAsBefore() throws {
        let old = #"{"rmse":0.93,"mae":1}"#
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = NonFiniteNumbers.decoding
        #expect(try decoder.decode([String: Double].self, from: Data(old.utf8)) == ["rmse": 0.93, "mae": 1])
    }
}
