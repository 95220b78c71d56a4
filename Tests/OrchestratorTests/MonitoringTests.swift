import EngineAPI
import Foundation
import StrictYAML
import Testing

/// The Grafana dashboard only uses series that exist: recording rules of
/// monitoring/rules/recommender.rules.yml and metrics recengine exports.
@Suite struct MonitoringTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func dashboardQueriesUseRecordedOrExportedSeries() throws {
        let dashboard =
            try JSONSerialization.jsonObject(
                with: Data(
                    contentsOf: Self.root.appendingPathComponent("monitoring/grafana/dashboards/recommender.json")))
            as? [String: Any]
        let panels = try #require(dashboard?["panels"] as? [[String: Any]])
        let expressions = panels.flatMap {
            ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String }
        }
        #expect(expressions.count >= 6)
        let rules = try String(
            contentsOf: Self.root.appendingPathComponent("monitoring/rules/recommender.rules.yml"), encoding: .utf8)
        for expression in expressions {
            for match in expression.matches(of: /color:[a-z_0-9:]+/) {
                #expect(rules.contains("record: \(match.output)"), "\(match.output) is not a recording rule")
            }
            let raw = expression.replacing(/color:[a-z_0-9:]+/, with: "")
            for match in raw.matches(of: /recengine_[a-z_]+/) {
                let metric = String(match.output).replacingOccurrences(of: "_bucket", with: "")
                let exported = [
                    "recengine_http_requests_total", "recengine_http_request_duration_seconds", "recengine_model_info",
                ]
                #expect(exported.contains(metric), "\(metric) is not a metric recengine exports")
            }
        }
    }
}
