import EngineAPI
import Foundation
import Orchestrator
import Provenance
import StrictYAML
import Testing

/// The `orchestrate` executable's documented exit codes and outputs.
@Suite struct CLITests {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ORCHESTRATE_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/orchestrate").path
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func orchestrate(_ arguments: [String], in folder: String) async throws -> Output {
        let result = try await runCommand(binary, arguments, environment: ["CI": "true"], in: folder)
        return Output(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    static let passing =
        "version: 1\nname: cli\nhistory: h.jsonl\nstages:\n  - name: a\n    run: [/bin/sh, -c, 'echo {\\\"score\\\": 1} > m.json']\n    metrics: m.json\n    gate:\n      score: {min: 0.5}\n"

    @Test func successRecordsAndExitsZero() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.passing, to: folder + "/p.yml")
            let run = try await Self.orchestrate(["run", "p.yml", "--output", "json"], in: folder)
            #expect(run.status == 0, "\(run.stderr)")
            let record = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            #expect(record?["outcome"] as? String == "succeeded")
            #expect(
                (record?["invocation"] as? [String: Any])?["trigger"] as? String == "ci", "CI=true makes the trigger ci"
            )
            #expect(run.stderr.contains("[1/1] a: done"))
            let verify = try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder)
            #expect(verify.status == 0)
            #expect(verify.stdout.contains("1 records, chain intact"))
            let list = try await Self.orchestrate(["history", "--history", "h.jsonl", "--last", "1"], in: folder)
            #expect(list.stdout.contains("succeeded"))
        }
    }

    @Test func runOutputJSONPrintsProgressAsOneEventPerLine() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.passing, to: folder + "/p.yml")
            let run = try await Self.orchestrate(["run", "p.yml", "--output", "json"], in: folder)
            #expect(run.status == 0, "\(run.stderr)")
            let lines = run.stderr.split(separator: "\n").map(String.init)
            #expect(!lines.isEmpty)
            for line in lines {
                let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(event?["event"] is String && event?["message"] is String && event?["at"] is String, "\(line)")
            }
            #expect(lines.contains { $0.contains(#""message":"[1/1] a: done"#) }, "\(lines)")
            let record = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            #expect(record?["outcome"] as? String == "succeeded", "the record stays the one object on stdout")
        }
    }

    @Test func rolloutProgressIsTypedAndReadsTheSameAsText() throws {
        let event = ProgressEvent.rollout(
            .step(number: 2, of: 3, target: "green", weight: 50, live: "blue", liveWeight: 50))
        #expect(event.text == "step 2/3: green 50%, blue 50%")
        let object =
            try JSONSerialization.jsonObject(with: Data(event.jsonLine(at: Date(timeIntervalSince1970: 0)).utf8))
            as? [String: Any]
        #expect(object?["event"] as? String == "rollout.step")
        #expect(object?["message"] as? String == event.text)
        #expect(
            object?["weight"] as? Int == 50 && object?["number"] as? Int == 2 && object?["live"] as? String == "blue")
        #expect(object?["at"] as? String == "1970-01-01T00:00:00Z")
        #expect(!event.jsonLine().contains("\n"), "one line")
    }

    @Test func aFailedGateExitsOne() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.passing, to: folder + "/p.yml")
            let run = try await Self.orchestrate(["run", "p.yml", "--set", "stages.a.gate.score.min=2"], in: folder)
            #expect(run.status == 1)
            #expect(run.stderr.contains("gate score >= 2 failed with 1"))
        }
    }

    @Test func invalidInputExitsTwoWithEveryLocation() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                "version: 1\nname: cli\nstages:\n  - name: a\n    run: [true]\n    timeout: soon\n    retries: many\n",
                to: folder + "/p.yml")
            let validate = try await Self.orchestrate(["validate", "p.yml"], in: folder)
            #expect(validate.status == 2)
            #expect(validate.stderr.contains("p.yml:6:14: stages.a.timeout"))
            #expect(validate.stderr.contains("p.yml:7:14: stages.a.retries"))
            let json = try await Self.orchestrate(["validate", "p.yml", "--output", "json"], in: folder)
            #expect(json.status == 2)
            #expect(json.stdout.contains("\"valid\" : false"))
            #expect(try await Self.orchestrate(["run", "p.yml", "--no-such-flag"], in: folder).status == 2)
            #expect(try await Self.orchestrate(["run", "missing.yml"], in: folder).status == 2)
        }
    }

    @Test func aHeldLockExitsThree() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.passing, to: folder + "/p.yml")
            let lock = try RunLock(
                historyPath: folder + "/h.jsonl",
                holder: .init(pid: 77, user: "ci", host: "runner", since: Date(), releaseID: "rel-1", command: []))
            defer { lock.release() }
            let run = try await Self.orchestrate(["run", "p.yml"], in: folder)
            #expect(run.status == 3)
            #expect(run.stderr.contains("another run holds the lock"))
        }
    }

    @Test func dryRunPrintsThePlan() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.passing, to: folder + "/p.yml")
            let run = try await Self.orchestrate(["run", "p.yml", "--dry-run"], in: folder)
            #expect(run.status == 0)
            #expect(run.stdout.contains("plan for release rel-"))
            #expect(run.stdout.contains("1. a: run /bin/sh -c 'echo "))
            #expect(!FileManager.default.fileExists(atPath: folder + "/h.jsonl"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/m.json"))
        }
    }
}
