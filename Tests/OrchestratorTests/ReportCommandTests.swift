import Foundation
import Orchestrator
import Provenance
import Testing

/// `orchestrate report` and `orchestrate history --at/--since/--until` through the real executable.
@Suite struct ReportCommandTests {
    static func orchestrate(
        _ arguments: [String], in folder: String, environment: [String: String] = [:]
    ) async throws -> CLITests.Output {
        let result = try await runCommand(
            CLITests.binary, arguments,
            environment: ["CI": "true", "ORCHESTRATE_GRAFANA_URL": ""].merging(environment) { $1 }, in: folder)
        return CLITests.Output(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    @Test func aRunWritesItsReportBesideTheHistory() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            let run = try await Self.orchestrate(
                ["run", "p.yml"], in: folder, environment: ["ORCHESTRATE_GRAFANA_URL": "http://grafana.test:3000"])
            #expect(run.status == 0, "\(run.stderr)")
            let record = try #require(try ReleaseHistory(path: folder + "/h.jsonl").records().last)
            let reportFolder = folder + "/reports/" + record.releaseID
            for file in ReleaseReport.files {
                #expect(FileManager.default.fileExists(atPath: reportFolder + "/" + file), "\(file)")
            }
            #expect(run.stderr.contains("report: \(reportFolder)/report.html"))
            let html = read(reportFolder + "/report.html")
            #expect(html.contains("Release \(record.releaseID)"))
            #expect(html.contains("href=\"http://grafana.test:3000/d/recommender?from="))
            #expect(read(reportFolder + "/report.md").contains("| a | succeeded |"))

            // The same report again, elsewhere, by id and with --last.
            let again = try await Self.orchestrate(
                ["report", record.releaseID, "--history", "h.jsonl", "--out", "out"], in: folder)
            #expect(again.status == 0, "\(again.stderr)")
            #expect(again.stdout.contains("\(folder)/out/report.html") || again.stdout.contains("out/report.html"))
            let json = try await Self.orchestrate(
                ["report", "--last", "--history", "h.jsonl", "--out", "out2", "--output", "json"], in: folder)
            #expect(json.status == 0, "\(json.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect((object?["release"] as? [String: Any])?["release_id"] as? String == record.releaseID)
            #expect(
                read(folder + "/out2/report.json") + "\n" == json.stdout, "the file holds what --output json prints")
        }
    }

    @Test func aReportThatCannotBeWrittenNeverFailsTheRelease() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            try write("a file where the reports folder would be", to: folder + "/reports")
            let run = try await Self.orchestrate(["run", "p.yml"], in: folder)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("warning: the release report was not written"))
            #expect(try ReleaseHistory(path: folder + "/h.jsonl").records().last?.outcome == .succeeded)

            let report = try await Self.orchestrate(
                ["report", "--last", "--history", "h.jsonl", "--out", "reports/x"], in: folder)
            #expect(report.status == 1)
            #expect(report.stderr.contains("cannot write the report to reports/x"), "\(report.stderr)")
        }
    }

    @Test func unknownReleasesAndHistoriesThatAreNotOneAreRefused() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            let empty = try await Self.orchestrate(["report", "--last", "--history", "h.jsonl"], in: folder)
            #expect(empty.status == 2)
            #expect(empty.stderr.contains("no release in h.jsonl"))
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            let unknown = try await Self.orchestrate(["report", "rel-nope", "--history", "h.jsonl"], in: folder)
            #expect(unknown.status == 2)
            #expect(unknown.stderr.contains("release rel-nope is not in h.jsonl"))
            let neither = try await Self.orchestrate(["report", "--history", "h.jsonl"], in: folder)
            #expect(neither.status == 2)
            #expect(neither.stderr.contains("name a release, or give --last"))
            let badURL = try await Self.orchestrate(
                ["report", "--last", "--history", "h.jsonl", "--grafana-url", "javascript:alert(1)"], in: folder)
            #expect(badURL.status == 2)
            #expect(badURL.stderr.contains("--grafana-url must be an http or https URL"))

            try write("root:x:0:0:root:/root:/bin/bash\n", to: folder + "/passwd")
            let corrupt = try await Self.orchestrate(["report", "--last", "--history", "passwd"], in: folder)
            #expect(corrupt.status == 2)
            #expect(corrupt.stderr.contains("passwd:1: not a release record"))
            let corruptAt = try await Self.orchestrate(
                ["history", "--history", "passwd", "--at", "2026-12-01T14:05:00Z"], in: folder)
            #expect(corruptAt.status == 2)
            #expect(corruptAt.stderr.contains("holds no release record"))
        }
    }

    @Test func historyAtSinceAndUntil() async throws {
        try await withTemporaryDirectory { folder in
            let history = folder + "/h.jsonl"
            try FileManager.default.copyItem(atPath: ReleaseRecords.reportHistory, toPath: history)
            let at = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--at", "2026-12-01T14:00:30Z"], in: folder)
            #expect(at.status == 0, "\(at.stderr)")
            #expect(
                at.stdout.contains(
                    "serving at 2026-12-01T14:00:30Z (since 2026-12-01T14:00:25Z: release rel-20261201T140000Z-bbbbbb, green 50% / blue 50%)"
                ))
            #expect(at.stdout.contains("green   50%     rel-20261201T140000Z-bbbbbb  cdcdcdcdcdcd"), "\(at.stdout)")
            #expect(at.stdout.contains("blue    50%     rel-20261201T135000Z-aaaaaa  abababababab"), "\(at.stdout)")

            let offset = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--at", "2026-12-01T15:20:00+01:00", "--output", "json"], in: folder
            )
            #expect(offset.status == 0, "\(offset.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(offset.stdout.utf8)) as? [String: Any]
            let serving = (object?["since"] as? [String: Any])?["serving"] as? [[String: Any]]
            #expect(serving?.count == 1)
            #expect(serving?.first?["color"] as? String == "green")
            #expect(serving?.first?["weight"] as? Int == 100)
            #expect(serving?.first?["model_sha256"] as? String == String(repeating: "ef", count: 32))

            let before = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--at", "2026-11-30T00:00:00Z"], in: folder)
            #expect(before.status == 2)
            #expect(
                before.stderr.contains(
                    "2026-11-30T00:00:00Z is before the first record of h.jsonl (2026-12-01T13:50:00Z)"))
            let notYet = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--at", "2026-12-01T13:50:05Z"], in: folder)
            #expect(notYet.status == 0)
            #expect(
                notYet.stdout.contains("nothing was serving at 2026-12-01T13:50:05Z: no record had moved traffic yet"))
            let bad = try await Self.orchestrate(["history", "--history", "h.jsonl", "--at", "yesterday"], in: folder)
            #expect(bad.status == 2)
            let both = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--at", "2026-12-01T14:00:30Z", "--since", "2026-12-01T14:00:00Z"],
                in: folder)
            #expect(both.status == 2)

            let range = try await Self.orchestrate(
                [
                    "history", "--history", "h.jsonl", "--since", "2026-12-01T14:00:00Z", "--until",
                    "2026-12-01T14:10:00Z", "--output", "json",
                ], in: folder)
            #expect(range.status == 0, "\(range.stderr)")
            let ids = (try JSONSerialization.jsonObject(with: Data(range.stdout.utf8)) as? [[String: Any]])?.compactMap
            { $0["release_id"] as? String }
            #expect(ids == ["rel-20261201T140000Z-bbbbbb", "rel-20261201T141000Z-cccccc"])
            let none = try await Self.orchestrate(
                ["history", "--history", "h.jsonl", "--since", "2027-01-01T00:00:00Z"], in: folder)
            #expect(none.status == 0)
            #expect(none.stdout.contains("no releases in h.jsonl in that time range"))
            let reversed = try await Self.orchestrate(
                [
                    "history", "--history", "h.jsonl", "--since", "2026-12-02T00:00:00Z", "--until",
                    "2026-12-01T00:00:00Z",
                ], in: folder)
            #expect(reversed.status == 2)
        }
    }
}
