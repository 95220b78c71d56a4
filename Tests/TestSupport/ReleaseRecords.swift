public import Foundation
public import Provenance

/// Release records the test targets share (ProvenanceTests, OrchestratorTests).
public enum ReleaseRecords {
    /// A finished, succeeded release with no stages, fixed except for its id.
    public static func sample(_ id: String) -> ReleaseRecord {
        ReleaseRecord(
            releaseID: id, startedOn: Date(timeIntervalSince1970: 1_800_000_000), finishedOn: nil,
            invocation: .init(trigger: "manual", user: "u", host: "h", command: []),
            builder: .init(id: "orchestrate", version: "t"),
            source: .init(gitCommit: nil, gitDirty: nil), pipeline: .init(name: "p", path: "/p.yml", sha256: "00"),
            overrides: [],
            dryRun: false, stages: [], model: nil, outcome: .succeeded)
    }

    /// `Tests/ProvenanceTests/Fixtures/report-history.jsonl` (made by `make-report-history.py`): four
    /// records, a first release on blue; one on green rolled back at 50 % (gates and the judge at
    /// 25 %); one promoted on green; an `orchestrate rollback` to the first model on blue.
    public static let reportHistory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("ProvenanceTests/Fixtures/report-history.jsonl").path
}
