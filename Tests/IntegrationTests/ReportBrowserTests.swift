import Foundation
import Orchestrator
import Provenance
import TestSupport
import Testing

/// The release report opened in a real browser (Debian's headless `chromium`): it renders with no
/// script error, and its charts hold exactly the points of the record.
@Suite struct ReportBrowserTests {
    static let fixture = Playground.root.appendingPathComponent("Tests/ProvenanceTests/Fixtures/report-history.jsonl")
        .path

    /// Chromium's serialised DOM after load, and its console errors (`Uncaught …`).
    struct Page {
        var dom: String
        var consoleErrors: [String]
    }

    /// Opens `file` headless; nil (with the reason printed) when chromium cannot run here.
    static func open(_ file: String, in folder: String) async throws -> Page? {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") else {
            print(
                "SKIPPED ReportBrowserTests: /usr/bin/chromium is not installed (apt-get install chromium; scripts/test installs it)"
            )
            return nil
        }
        // Its own profile folder: another chromium on the machine holds the default one's lock.
        let result = try await runCommand(
            "/usr/bin/timeout",
            [
                "120", "/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--user-data-dir=\(folder)/profile",
                "--enable-logging=stderr", "--v=0", "--dump-dom", URL(fileURLWithPath: file).absoluteString,
            ])
        guard result.status == 0, result.stdout.contains("</html>") else {
            print(
                "SKIPPED ReportBrowserTests: chromium could not run here (exit \(result.status)): \(result.stderr.suffix(600))"
            )
            return nil
        }
        let errors = result.stderr.split(separator: "\n").filter {
            $0.contains(":CONSOLE") && ($0.contains("Uncaught") || $0.contains("Error"))
        }
        return Page(dom: result.stdout, consoleErrors: errors.map(String.init))
    }

    /// Every drawn point: its series and exact value, in document order.
    static func points(in dom: String) throws -> [(series: String, value: Double)] {
        let pattern = try NSRegularExpression(
            pattern: #"<circle class="pt[^"]*" data-series="([^"]*)" data-t="[^"]*" data-v="([^"]*)""#)
        return pattern.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)).compactMap { match in
            guard let series = Range(match.range(at: 1), in: dom), let value = Range(match.range(at: 2), in: dom),
                let number = Double(dom[value])
            else {
                return nil
            }
            return (String(dom[series]), number)
        }
    }

    @Test func theReportRendersWithoutErrorsAndItsChartsHoldTheRecordedPoints() async throws {
        try await withTemporaryDirectory { folder in
            let records = try ReleaseHistory(path: Self.fixture).records()
            let record = try #require(records.first { $0.outcome == .rolledBack })
            let report = ReleaseReport(record: record, history: records, grafana: "http://grafana.test:3000")
            try report.write(to: folder + "/report")

            // The check can fail: a page with a broken script is caught.
            try write(
                "<!DOCTYPE html><html><body><script>notAFunction()</script></body></html>", to: folder + "/broken.html")
            guard let broken = try await Self.open(folder + "/broken.html", in: folder) else { return }
            #expect(
                broken.consoleErrors.contains { $0.contains("notAFunction is not defined") },
                "chromium reports script errors")

            guard let page = try await Self.open(folder + "/report/report.html", in: folder) else { return }
            #expect(page.consoleErrors.isEmpty, "\(page.consoleErrors)")
            #expect(page.dom.contains("<title>Release \(record.releaseID): rolled_back</title>"))
            let drawn = try Self.points(in: page.dom)
            func values(_ series: String) -> [Double] { drawn.filter { $0.series == series }.map(\.value) }

            // Gates: every measurement with a value, in order, exactly.
            let steps = try #require(record.rollout?.steps)
            for gate in ["error-rate", "engagement"] {
                let recorded = steps.flatMap(\.measurements).filter { $0.gate == gate }.compactMap(\.value)
                #expect(!recorded.isEmpty)
                #expect(values("gate:\(gate)") == recorded, "gate \(gate)")
            }
            // The judge: the difference at every look.
            let looks = steps.flatMap { $0.judge ?? [] }.flatMap { $0.metrics.flatMap(\.comparisons) }
            #expect(values("judge:engagement") == looks.map(\.difference))
            #expect(values("rate:engagement:green") == looks.map { $0.newSuccesses / $0.newTrials })
            // Traffic: one point per shift event per colour.
            #expect(values("weight:green") == [25, 50, 0])
            #expect(values("weight:blue") == [75, 50, 100])
            // Weights 6, error-rate 2 (one had no data), engagement 3, the judge 2, rates 4.
            #expect(drawn.count == 17)
            #expect(
                page.dom.components(separatedBy: "<svg class=\"chart\"").count - 1 == 5,
                "weights, two gates, the judge's difference and rates")
            #expect(page.dom.contains("href=\"http://grafana.test:3000/d/recommender?from="))
        }
    }
}
