import Foundation
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

@testable import Provenance

/// The shadow stage's comparison in the record and the report: kept as written, shown in the three
/// renderings, outside text escaped.
@Suite struct ShadowReportTests {
    static func comparison(user: String = "u7") -> ShadowComparison {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        return ShadowComparison(
            startedOn: start, finishedOn: start + 30, share: 10, sampled: 120, compared: 110, errors: 2, timeouts: 1,
            meanRBO: 0.04, meanOverlap: 0.06, rboHistogram: [100, 8, 2, 0, 0, 0, 0, 0, 0, 0], liveP50: 2, liveP95: 4,
            newP50: 2.2, newP95: 4.8, errorShare: 2.0 / 112,
            live: .init(recommended: 1100, distinct: 40, top10Share: 0.5),
            new: .init(recommended: 1100, distinct: 600, top10Share: 0.02),
            gates: [.init(name: "rbo", condition: ">= 0.2", value: 0.04, passed: false)], passed: false,
            verdict: "shadow stage: rbo 0.04 is not >= 0.2 (...); no user saw green",
            samples: [
                .init(
                    user: user, rbo: 0, overlap: 0, liveMilliseconds: 2, newMilliseconds: 3, liveItems: ["m1", "m2"],
                    newItems: ["m9", "m8"])
            ])
    }

    static func record(_ comparison: ShadowComparison) throws -> ReleaseRecord {
        var record = try ReleaseHistory(path: ReleaseRecords.reportHistory).records()[1]
        record.rollout?.shadow = comparison
        return record
    }

    @Test func theRecordKeepsTheComparison() throws {
        let record = try Self.record(Self.comparison())
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let read = try decoder.decode(ReleaseRecord.self, from: encoder.encode(record))
        #expect(read.rollout?.shadow == Self.comparison())
        let json = String(decoding: try encoder.encode(Self.comparison()), as: UTF8.self)
        #expect(json.contains("\"mean_rbo\":0.04") && json.contains("\"rbo_histogram\":[100,8,2,0,0,0,0,0,0,0]"))
    }

    @Test func theReportShowsTheHistogramTheGatesAndTheListsThatChangedMost() throws {
        let report = ReleaseReport(record: try Self.record(Self.comparison()), history: [], grafana: nil)
        let html = report.html()
        #expect(html.contains("<section class=\"shadow\"><h2>Shadow stage: green"))
        #expect(html.contains("<title>RBO 0.0-0.1: 100</title>"))
        #expect(html.contains("<td>m1, m2</td><td>m9, m8</td>"))
        #expect(html.contains("no user saw green"))
        let markdown = report.markdown()
        #expect(markdown.contains("## Shadow stage"))
        #expect(markdown.contains("    0.0-0.1 ##############################"))
        let json = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        let shadow = (json?["rollout"] as? [String: Any])?["shadow"] as? [String: Any]
        #expect(shadow?["compared"] as? Int == 110)
    }

    @Test func aHostileUserIsEscaped() throws {
        let report = ReleaseReport(
            record: try Self.record(Self.comparison(user: "<script>alert(1)</script>")), history: [], grafana: nil)
        #expect(!report.html().contains("<script>alert"))
    }

    /// `--dry-run`'s lines for the stage: every gate with its bound, and what a failure does.
    @Test func theDryRunShowsTheCatalogueGatesAndWhatAFailureDoes() {
        let shadow = ShadowSpec(
            share: 10, duration: .seconds(60), requests: 200,
            gates: ShadowGates(rboMin: 0.2, coverageMin: 0.5, popularityMax: 1.5))
        let lines = RunPlan.describe(shadow, target: "green", live: "blue", automaticRollback: true)
        #expect(
            lines.contains(
                "    gate coverage: distinct movies green recommends / blue's, over the same requests >= 0.5"),
            "\(lines)")
        #expect(
            lines.contains(
                "    gate popularity: share of green's recommendations on its 10 most recommended movies / blue's <= 1.5"
            ))
        #expect(lines.last == "    a failed gate rolls back before step 1: green is stopped, no user ever saw it")
        let held = RunPlan.describe(shadow, target: "green", live: "blue", automaticRollback: false)
        #expect(
            held.last
                == "    a failed gate holds before step 1 (rollback.automatic is false; green at 0 %): orchestrate abort rolls back, promote goes on to step 1"
        )
    }

    @Test func explainPrintsEveryPart() {
        let lines = Self.comparison().lines(target: "green", live: "blue")
        #expect(lines[0].hasSuffix("10% of the live requests: FAILED"))
        #expect(lines.contains("  gate rbo >= 0.2: 0.04 FAILED"))
        #expect(lines.contains("  latency p50/p95: blue 2.0/4.0 ms, green 2.2/4.8 ms"))
        #expect(lines.contains("    u7: RBO 0.000, overlap 0.000, 2.0 ms / 3.0 ms"))
        #expect(lines.contains("      green: m9,m8"))
        #expect(lines.contains("  coverage green/blue 15.000, popularity (top-10 share) green/blue 0.040"), "\(lines)")
    }
}
