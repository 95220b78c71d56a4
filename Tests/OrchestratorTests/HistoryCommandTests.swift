import Foundation
import Orchestrator
import Provenance
import StrictYAML
import Testing

/// `orchestrate history keygen` and `verify`, and a signed run, through the real executable.
@Suite struct HistoryCommandTests {
    static func orchestrate(
        _ arguments: [String], in folder: String, environment: [String: String] = [:]
    ) async throws -> CLITests.Output {
        let result = try await runCommand(
            CLITests.binary, arguments,
            environment: ["CI": "true", "ORCHESTRATE_SIGNING_KEY": "", "ORCHESTRATE_SIGNING_KEY_FILE": ""].merging(
                environment
            ) { $1 },
            in: folder)
        return CLITests.Output(status: result.status, stdout: result.stdout, stderr: result.stderr)
    }

    @Test func keygenSignedRunsAndVerifyRoundTrip() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            let keygen = try await Self.orchestrate(["history", "keygen", "--out", "release.key"], in: folder)
            #expect(keygen.status == 0, "\(keygen.stderr)")
            let mode =
                try FileManager.default.attributesOfItem(atPath: folder + "/release.key")[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let key = try ReleaseSigningKey(file: folder + "/release.key")
            #expect(keygen.stdout.contains("key id:     \(key.publicKey.keyID)"))
            #expect(read(folder + "/release.key.pub") == key.publicKey.base64 + "\n")
            let again = try await Self.orchestrate(["history", "keygen", "--out", "release.key"], in: folder)
            #expect(again.status == 2)
            #expect(again.stderr.contains("keygen never overwrites a key"))

            // Signed with --signing-key, then with the key in the environment.
            let first = try await Self.orchestrate(["run", "p.yml", "--signing-key", "release.key"], in: folder)
            #expect(first.status == 0, "\(first.stderr)")
            let second = try await Self.orchestrate(
                ["run", "p.yml", "--force"], in: folder, environment: ["ORCHESTRATE_SIGNING_KEY": key.base64])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(
                try ReleaseHistory(path: folder + "/h.jsonl").records().map(\.signer?.keyID) == [
                    key.publicKey.keyID, key.publicKey.keyID,
                ])

            let verify = try await Self.orchestrate(
                ["history", "verify", "--history", "h.jsonl", "--public-key", "release.key.pub"], in: folder)
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(
                verify.stdout.contains("2 records, chain intact; signatures checked against key \(key.publicKey.keyID)")
            )
            let unchecked = try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder)
            #expect(unchecked.status == 0)
            #expect(
                unchecked.stdout.contains(
                    "signatures not checked (no --public-key); signed by \(key.publicKey.keyID) (2)"))

            // A record appended with a correct chain but without the key.
            try ReleaseHistory(path: folder + "/h.jsonl").append(ReleaseRecords.sample("rel-forged"))
            let forged = try await Self.orchestrate(
                [
                    "history", "verify", "--history", "h.jsonl", "--public-key", key.publicKey.base64, "--output",
                    "json",
                ], in: folder)
            #expect(forged.status == 1)
            #expect(forged.stdout.contains("\"line\" : 3"))
            #expect(forged.stdout.contains("unsigned, after the signed line 2"))

            let badKey = try await Self.orchestrate(
                ["history", "verify", "--history", "h.jsonl", "--public-key", "nope"], in: folder)
            #expect(badKey.status == 2)
            #expect(badKey.stderr.contains("--public-key is neither a readable file nor the base64"))
            let badSigningKey = try await Self.orchestrate(
                ["run", "p.yml"], in: folder, environment: ["ORCHESTRATE_SIGNING_KEY": "short"])
            #expect(badSigningKey.status == 2)
            #expect(badSigningKey.stderr.contains("ORCHESTRATE_SIGNING_KEY is not"))
        }
    }

    @Test func aHeadWithNoLinesIsReportedNotTrapped() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            try write(
                "{\"last_sha256\":\"\(String(repeating: "0", count: 64))\",\"lines\":0}", to: folder + "/h.jsonl.head")
            let verify = try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder)
            #expect(verify.status == 1)
            #expect(
                verify.stderr.contains("unparseable head \(folder)/h.jsonl.head: lines is 0")
                    || verify.stderr.contains("unparseable head h.jsonl.head: lines is 0"))
        }
    }

    @Test func aRunAndValidateRefuseAFileThatIsNotAHistory() async throws {
        try await withTemporaryDirectory { folder in
            let passwd = "root:x:0:0:root:/root:/bin/bash\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\n"
            try write(passwd, to: folder + "/passwd")
            try write(
                CLITests.passing.replacingOccurrences(of: "history: h.jsonl", with: "history: passwd"),
                to: folder + "/p.yml")
            let run = try await Self.orchestrate(["run", "p.yml"], in: folder)
            #expect(run.status == 2)
            #expect(run.stderr.contains("\(folder)/passwd:1: not a release record"), "\(run.stderr)")
            #expect(read(folder + "/passwd") == passwd)
            #expect(
                !FileManager.default.fileExists(atPath: folder + "/passwd.lock"),
                "the run stopped before taking the lock")
            #expect(!FileManager.default.fileExists(atPath: folder + "/passwd.head"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/m.json"), "no stage ran")

            let validate = try await Self.orchestrate(["validate", "p.yml"], in: folder)
            #expect(validate.status == 2)
            #expect(validate.stderr.contains("\(folder)/passwd:1:1: history"), "\(validate.stderr)")
            // The same check for the plan: a dry run refuses it too.
            let dryRun = try await Self.orchestrate(["run", "p.yml", "--dry-run"], in: folder)
            #expect(dryRun.status == 2, "\(dryRun.stdout)")
            #expect(dryRun.stderr.contains("\(folder)/passwd:1: not a release record"), "\(dryRun.stderr)")
        }
    }
}
