import Foundation
import TestSupport
import Testing

@testable import Provenance

/// Who answered the webhook gates, and when: kept in the record (`history --output json` prints
/// it), shown in the report's three renderings, outside text escaped.
@Suite struct GateAnswerReportTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000)

    static func record(by person: String = "alice") throws -> ReleaseRecord {
        var record = try ReleaseHistory(path: ReleaseRecords.reportHistory).records()[1]
        record.rollout?.gateAnswers = [
            .init(
                gate: "confirm-traffic-increase more", point: "before step 2", step: 2, answer: "yes (HTTP 200)",
                by: "receiver", at: at),
            .init(
                gate: "confirm-promotion go", point: "before the promotion", step: nil,
                answer: "approved (orchestrate approve)", by: person, at: at + 90),
        ]
        return record
    }

    @Test func theRecordKeepsTheAnswersAndTheReportShowsWhoApprovedWhatAndWhen() throws {
        let record = try Self.record()
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let data = try encoder.encode(record)
        #expect(try decoder.decode(ReleaseRecord.self, from: data).rollout?.gateAnswers == record.rollout?.gateAnswers)
        let rollout = try #require(
            (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["rollout"] as? [String: Any])
        let answers = try #require(rollout["gate_answers"] as? [[String: Any]])
        #expect(answers.map { $0["by"] as? String } == ["receiver", "alice"])

        let report = ReleaseReport(record: record, history: [], grafana: nil)
        let html = report.html()
        #expect(html.contains("<h2>Webhook gates: who answered, and when</h2>"), "\(html)")
        #expect(
            html.contains(
                "<tr><td>confirm-promotion go</td><td>before the promotion</td><td>approved (orchestrate approve)</td><td>alice</td><td>2027-01-15"
            ), "\(html)")
        #expect(report.markdown().contains("## Webhook gates: who answered, and when"))
        let json = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        let reported = (json?["rollout"] as? [String: Any])?["gate_answers"] as? [[String: Any]]
        #expect(reported?.last?["by"] as? String == "alice")
    }

    @Test func aRecordWithoutAnswersHasNoTableAndAHostileNameIsEscaped() throws {
        var record = try Self.record()
        record.rollout?.gateAnswers = nil
        #expect(!ReleaseReport(record: record, history: [], grafana: nil).html().contains("Webhook gates"))
        let hostile = ReleaseReport(record: try Self.record(by: "<script>x</script>"), history: [], grafana: nil)
        #expect(!hostile.html().contains("<script>x"))
    }
}
