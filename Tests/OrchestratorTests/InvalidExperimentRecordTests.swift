import Foundation
import Provenance
import TestSupport
import Testing

@testable import Orchestrator
@testable import OrchestratorSupport

/// A release rolled back as an invalid experiment, as the record keeps it: `run`'s exit code,
/// the report's rule and `orchestrate explain` (through the real executable) say what share was
/// expected and seen.
@Suite struct InvalidExperimentRecordTests {
    static let rule =
        "sample ratio mismatch (p < 0.001): users: new 40.0 % of 1000 (400 new, 600 live), expected 50.0 %: chi-squared 40.00, p 2.5e-10: "
        + "the split does not send each colour its share, so no comparison of this step can be trusted"

    /// The four records of the report's fixture history (`ReleaseRecords.reportHistory`).
    static func reportHistory() throws -> [ReleaseRecord] {
        try ReleaseHistory(path: ReleaseRecords.reportHistory).records()
    }

    /// The fixture's release rolled back at 50 %, its last step ended by a sample ratio mismatch.
    static func invalid() throws -> ReleaseRecord {
        var record = try Self.reportHistory()[1]
        var rollout = try #require(record.rollout)
        let last = rollout.steps.count - 1
        let check = SampleRatioCheck(
            count: "users", expectedShare: 0.5, observedShare: 0.4, new: 400, live: 600, groups: nil, statistic: 40,
            pValue: 2.5396285894708634e-10, mismatch: true)
        var look = JudgeLook(
            at: rollout.steps[last].startedOn.addingTimeInterval(4), elapsed: 4, metrics: [], score: nil,
            decision: .invalid, rule: rule)
        look.sampleRatio = [check]
        rollout.steps[last].judge = [look]
        rollout.steps[last].judgeDecision = .invalid
        rollout.steps[last].judgeRule = rule
        rollout.steps[last].measurements = []
        record.rollout = rollout
        record.failure = "invalid experiment: \(rule)"
        return record
    }

    @Test func runExitsSixAndTheReportSaysWhy() throws {
        let record = try Self.invalid()
        #expect(
            ReleaseController.RunResult.exitCode(record: record, interruptedBy: nil) == ExitStatus.invalidExperiment)
        #expect(
            ReleaseController.RunResult.exitCode(record: try Self.reportHistory()[1], interruptedBy: nil)
                == ExitStatus.failed, "a worse model exits 1")
        #expect(
            ReleaseController.RunResult.exitCode(record: record, interruptedBy: SIGTERM) == 143,
            "a signal first decides")
        let report = ReleaseReport(
            record: record, history: try Self.reportHistory(), grafana: "http://grafana.test:3000/")
        let step = try #require(report.rollout?.steps.last)
        #expect(step.verdict == "failed")
        #expect(step.rule == "judge invalid experiment: \(Self.rule)")
    }

    @Test func explainPrintsTheSplitsCheck() async throws {
        try await withTemporaryDirectory { folder in
            _ = try ReleaseHistory(path: folder + "/h.jsonl").append(try Self.invalid())
            let explained = try await ReportCommandTests.orchestrate(
                ["explain", "--last", "--history", "h.jsonl"], in: folder)
            #expect(explained.status == 0, "\(explained.stderr)")
            #expect(
                explained.stdout.contains(": rolled_back — invalid experiment: sample ratio mismatch (p < 0.001)"),
                "\(explained.stdout)")
            #expect(
                explained.stdout.contains(
                    "  judge: 1 look(s); invalid experiment: sample ratio mismatch (p < 0.001): users: new 40.0 %"))
            #expect(
                explained.stdout.contains(
                    "  sample ratio MISMATCH: users: new 40.0 % of 1000 (400 new, 600 live), expected 50.0 %: chi-squared 40.00, p 2.5e-10"
                ))
        }
    }
}
