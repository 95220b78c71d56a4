import Foundation
import TestSupport
import Testing

@testable import OrchestratorSupport
@testable import Provenance

/// The release report's data, its three renderings, and what it does with hostile records.
/// `Fixtures/report-history.jsonl` (made by `Fixtures/make-report-history.py`) holds four records:
/// a first release on blue; one on green rolled back at 50 % (gates and the judge at 25 %); one
/// promoted on green; an `orchestrate rollback` to the first model on blue.
@Suite struct ReleaseReportTests {
    static let fixture = ReleaseRecords.reportHistory

    static func records() throws -> [ReleaseRecord] {
        let records = try ReleaseHistory(path: fixture).records()
        #expect(records.count == 4)
        return records
    }

    static func date(_ text: String) -> Date {
        ISO8601DateFormatter().date(from: text) ?? .distantPast
    }

    @Test func theReportOfARolledBackReleaseHoldsWhatTheRecordSays() throws {
        let records = try Self.records()
        let report = ReleaseReport(record: records[1], history: records, grafana: "http://grafana.test:3000/")
        #expect(report.release.outcome == "rolled_back")
        #expect(report.release.durationSeconds == 60)
        #expect(report.model?.sha256 == String(repeating: "cd", count: 32))
        #expect(report.liveModel?.releaseID == records[0].releaseID)
        #expect(report.liveModel?.color == "blue")
        let rmse = report.offlineMetrics.first { $0.stage == "evaluate" && $0.metric == "rmse" }
        #expect(rmse?.value == 0.93)
        #expect(rmse?.liveValue == 0.95)

        let rollout = try #require(report.rollout)
        #expect(rollout.weights.map { $0.weights.map(\.weight) } == [[25, 75], [50, 50], [0, 100]])
        #expect(rollout.weights[0].weights.map(\.color) == ["green", "blue"])
        #expect(rollout.steps.map(\.verdict) == ["passed", "failed"])
        #expect(rollout.steps[0].rule.contains("judge pass: every critical metric passed"))
        #expect(rollout.steps[0].rule.contains("every gate held (2 gates, 4 measurements)"))
        #expect(rollout.steps[1].rule == "gate engagement >= 0.02 failed with 0.011")
        #expect(rollout.gates.map(\.gate) == ["error-rate", "engagement"])
        #expect(rollout.gates[1].points.map(\.value) == [0.031, 0.027, 0.011])
        #expect(rollout.gates[1].bounds == [.init(relation: ">=", value: 0.02)])
        #expect(rollout.gates[0].points.last?.value == nil, "the no-data measurement is kept, without a value")
        #expect(rollout.judge.count == 1)
        #expect(rollout.judge[0].points.map(\.newRate) == [0.03, 0.032])
        #expect(rollout.judge[0].points.map(\.liveRate) == [0.03, 0.032])
        let rollback = try #require(rollout.rollback)
        #expect(rollback.reason == "gate engagement >= 0.02 failed with 0.011")
        #expect(rollback.actions.map(\.detail) == ["blue 100% (traffic restored)", "green stopped"])

        let grafana = try #require(report.grafana)
        let from = Int64(records[1].startedOn.timeIntervalSince1970 * 1000) - 60_000
        let to = Int64((records[1].finishedOn ?? .distantPast).timeIntervalSince1970 * 1000) + 60_000
        #expect(grafana.url == "http://grafana.test:3000/d/recommender?from=\(from)&to=\(to)")
    }

    @Test func theThreeRenderingsCarryTheSameNumbers() throws {
        let records = try Self.records()
        let report = ReleaseReport(record: records[1], history: records, grafana: nil)
        let html = report.html()
        #expect(!html.contains("<script"), "the page runs no script")
        #expect(
            !html.contains(" src=") && !html.contains("<link") && !html.contains("@import"), "the page fetches nothing")
        // One circle per measurement with a value, carrying it exactly.
        for gate in report.rollout?.gates ?? [] {
            let values = gate.points.compactMap(\.value).map { "data-v=\"\($0)\"" }
            let drawn = html.components(separatedBy: "data-series=\"gate:\(gate.gate)\"").dropFirst().map {
                $0.prefix(80)
            }
            #expect(drawn.count == values.count)
            for (circle, value) in zip(drawn, values) { #expect(circle.contains(value)) }
        }
        #expect(
            html.components(separatedBy: "class=\"pt failed\"").count - 1 == 1,
            "the failed engagement measurement is drawn as failed")
        let markdown = report.markdown()
        #expect(markdown.contains("| 2 | green 50% |"))
        #expect(markdown.contains("| evaluate | rmse | 0.93 | 0.95 |"))
        let json = try JSONSerialization.jsonObject(with: report.json()) as? [String: Any]
        let rollout = json?["rollout"] as? [String: Any]
        let gates = rollout?["gates"] as? [[String: Any]]
        #expect(
            (gates?[1]["points"] as? [[String: Any]])?.compactMap { $0["value"] as? Double } == [0.031, 0.027, 0.011])
        #expect((json?["release"] as? [String: Any])?["release_id"] as? String == records[1].releaseID)
    }

    @Test func hostileStringsAreEscapedEverywhere() throws {
        var record = try Self.records()[1]
        let hostile =
            "<script>alert(1)</script> | <img src=x onerror=alert(2)> \"quoted\" 'single' & [link](http://evil) **bold**\nsecond line"
        record.failure = hostile
        record.pipeline.name = hostile
        record.stages[0].name = hostile
        record.stages[0].metrics[hostile] = 1
        record.rollout?.events.append(.init(at: record.startedOn, kind: .hook, detail: hostile))
        record.rollout?.steps[0].measurements[0].gate = hostile
        record.rollout?.steps[0].measurements[0].query = hostile
        record.rollout?.steps[0].judgeRule = hostile
        let report = ReleaseReport(record: record, history: [record], grafana: nil)
        let html = report.html()
        #expect(!html.contains("<script"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("\"quoted\""))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        let markdown = report.markdown()
        #expect(!markdown.contains("<script"))
        #expect(!markdown.contains("<img"))
        #expect(!markdown.contains("[link](http://evil)"))
        // Every table row keeps its column count: the hostile `|` and newline are escaped.
        for line in markdown.split(separator: "\n") where line.hasPrefix("| ") {
            let cells = line.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count
            #expect(cells >= 3, "\(line)")
        }
        let events = markdown.split(separator: "\n").filter {
            $0.contains("alert(1)") && $0.hasPrefix("| ") && $0.contains("hook")
        }
        #expect(events.count == 2, "in the events, and among what the rollback did")
        #expect(events.allSatisfy { $0.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count == 4 })
    }

    @Test func aReleaseIDThatCannotNameAFolderIsRefused() throws {
        for id in ["../../etc", "a/b", "", ".hidden", "rel x"] {
            #expect(throws: OrchestratorError.self) { try ReleaseReport.folder(history: "/tmp/h.jsonl", releaseID: id) }
        }
        #expect(
            try ReleaseReport.folder(history: "releases/release_history.jsonl", releaseID: "rel-1")
                == "releases/reports/rel-1")
        #expect(try ReleaseReport.folder(history: "h.jsonl", releaseID: "rel-1") == "./reports/rel-1")
        #expect(
            try ReleaseReport.folder(history: "/srv/r/h.jsonl", releaseID: "rel-1.2_a") == "/srv/r/reports/rel-1.2_a")
    }

    @Test func aFolderThatCannotBeWrittenIsAFileSystemError() async throws {
        try await withTemporaryDirectory { folder in
            try write("a file, not a folder", to: folder + "/taken")
            let records = try Self.records()
            let report = ReleaseReport(record: records[1], history: records, grafana: nil)
            do {
                try report.write(to: folder + "/taken/report")
                Issue.record("writing under a file succeeded")
            } catch let error as OrchestratorError {
                #expect(error.code == .fileSystem)
                #expect(error.message.contains("cannot write the report to \(folder)/taken/report"))
            }
            let written = try report.write(to: folder + "/new/report")
            #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent } == ReleaseReport.files)
            #expect(read(folder + "/new/report/report.html").hasPrefix("<!DOCTYPE html>"))
        }
    }

    @Test(arguments: [
        ("green 25% / blue 75%", [("green", 25), ("blue", 75)]),
        ("blue 100% / none 0%", [("blue", 100)]),
        ("blue 100% (traffic restored)", [("blue", 100)]),
        ("blue 100%: its promotion had been saved", [("blue", 100)]),
        ("green 100%", [("green", 100)]),
    ])
    func shiftEventsGiveTheirSplit(detail: String, expected: [(String, Int)]) {
        let weights = RolloutEvent(at: Date(), kind: .shift, detail: detail).shiftedWeights
        #expect(weights?.map(\.color) == expected.map(\.0))
        #expect(weights?.map(\.weight) == expected.map(\.1))
    }

    @Test(arguments: [
        "could not restore traffic to blue: refused 100%", "blue is not running: traffic stays on green", "blue 150%",
        "",
    ])
    func shiftEventsThatMovedNothingGiveNoSplit(detail: String) {
        #expect(RolloutEvent(at: Date(), kind: .shift, detail: detail).shiftedWeights == nil)
        #expect(RolloutEvent(at: Date(), kind: .stop, detail: "green 100%").shiftedWeights == nil)
    }

    @Test func theDashboardUIDIsTheMonitoringDashboards() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let dashboard = try JSONSerialization.jsonObject(
            with: Data(contentsOf: root.appendingPathComponent("monitoring/grafana/dashboards/recommender.json")))
        #expect((dashboard as? [String: Any])?["uid"] as? String == ReleaseReport.GrafanaLink.dashboardUID)
        #expect(ReleaseReport.GrafanaLink(baseURL: "ftp://x", from: Date(), to: Date()) == nil)
        #expect(ReleaseReport.GrafanaLink.defaultBaseURL(environment: [:]) == "http://localhost:3000")
        #expect(
            ReleaseReport.GrafanaLink.defaultBaseURL(environment: ["ORCHESTRATE_GRAFANA_URL": "https://g.example"])
                == "https://g.example")
    }

    @Test func whatServedAtEachTime() throws {
        let timeline = ServingTimeline(records: try Self.records())
        func serving(_ time: String) -> [String] {
            timeline.change(at: Self.date(time))?.serving.map {
                "\($0.color) \($0.weight) \($0.releaseID ?? "?") \($0.modelVersion ?? "?")"
            } ?? ["none"]
        }
        let first = "rel-20261201T135000Z-aaaaaa"
        let second = "rel-20261201T140000Z-bbbbbb"
        let third = "rel-20261201T141000Z-cccccc"
        #expect(serving("2026-12-01T13:50:05Z") == ["none"], "the first release had not shifted yet")
        #expect(serving("2026-12-01T13:55:00Z") == ["blue 100 \(first) abababababab"])
        #expect(
            serving("2026-12-01T14:00:10Z") == ["blue 75 \(first) abababababab", "green 25 \(second) cdcdcdcdcdcd"])
        #expect(
            serving("2026-12-01T14:00:30Z") == ["blue 50 \(first) abababababab", "green 50 \(second) cdcdcdcdcdcd"])
        #expect(serving("2026-12-01T14:05:00Z") == ["blue 100 \(first) abababababab"], "after the rollback")
        #expect(serving("2026-12-01T14:10:15Z") == ["blue 50 \(first) abababababab", "green 50 \(third) efefefefefef"])
        #expect(serving("2026-12-01T14:20:00Z") == ["green 100 \(third) efefefefefef"])
        // `orchestrate rollback` put the first release's model back on blue: named by the release that built it.
        #expect(serving("2026-12-01T14:40:00Z") == ["blue 100 \(first) abababababab"])
        #expect(timeline.change(at: Self.date("2026-12-01T14:40:00Z"))?.action == "rollback")
        #expect(ServingTimeline(records: []).changes.isEmpty)
        #expect(ServingTimeline(records: []).firstRecord == nil)
    }
}
