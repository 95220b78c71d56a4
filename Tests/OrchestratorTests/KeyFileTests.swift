import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import Testing

/// Signing key files are read like ssh reads private keys: only the owner may read one, a public
/// key is not a private one, and nothing but a small regular file is ever read.
@Suite struct KeyFileTests {
    /// Writes a key file of `mode` holding a fresh key; returns its path.
    static func keyFile(in folder: String, name: String = "release.key", mode: mode_t) throws -> String {
        let path = folder + "/" + name
        try write(ReleaseSigningKey.generate().base64 + "\n", to: path)
        chmod(path, mode)
        return path
    }

    @Test(arguments: [0o600, 0o400]) func aKeyOnlyItsOwnerReadsIsUsed(mode: Int) async throws {
        try await withTemporaryDirectory { folder in
            let path = try Self.keyFile(in: folder, mode: mode_t(mode))
            #expect(throws: Never.self) { try ReleaseSigningKey(file: path) }
        }
    }

    @Test(arguments: [0o644, 0o640, 0o604, 0o660]) func aKeyOthersCanReadIsRefusedWithTheFix(mode: Int) async throws {
        try await withTemporaryDirectory { folder in
            let path = try Self.keyFile(in: folder, mode: mode_t(mode))
            let error = #expect(throws: OrchestratorError.self) { try ReleaseSigningKey(file: path) }
            #expect(error?.code.exitCode == 2)
            #expect(
                error?.message.contains("is readable by others (mode \(String(mode, radix: 8)))") == true,
                "\(error?.description ?? "")")
            #expect(error?.hint == "chmod 600 \(path)")
        }
    }

    @Test func aPublicKeyIsNotAPrivateKey() async throws {
        try await withTemporaryDirectory { folder in
            let path = try Self.keyFile(in: folder, name: "release.key.pub", mode: 0o600)
            let error = #expect(throws: OrchestratorError.self) { try ReleaseSigningKey(file: path) }
            #expect(error?.code.exitCode == 2)
            #expect(error?.message.contains("is a public key") == true)
            #expect(error?.hint?.contains("--signing-key \(folder)/release.key ") == true, "\(error?.hint ?? "")")
        }
    }

    /// What is not a small regular file is refused before a byte is read: a 2 GiB file (sparse),
    /// a FIFO (no writer: reading would block), `/dev/zero` (never ends), a folder.
    @Test(arguments: ["huge", "fifo", "/dev/zero", "folder", "missing"])
    func onlyASmallRegularFileIsRead(kind: String) async throws {
        try await withTemporaryDirectory { folder in
            var path = folder + "/key"
            var expected = ""
            switch kind {
            case "huge":
                #expect(
                    FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]))
                #expect(truncate(path, 2 << 30) == 0)
                expected = "is 2147483648 bytes"
            case "fifo":
                #expect(mkfifo(path, 0o600) == 0)
                expected = "is a FIFO (named pipe), not a key file"
            case "folder":
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                expected = "is a folder, not a key file"
            case "missing":
                expected = "does not exist"
            default:
                path = kind
                expected = "is a character device, not a key file"
            }
            let error = #expect(throws: OrchestratorError.self) { try ReleaseSigningKey(file: path) }
            #expect(error?.code.exitCode == 2)
            #expect(error?.message.contains(expected) == true, "\(error?.description ?? "")")
            let publicKey = #expect(throws: OrchestratorError.self) { try ReleasePublicKey(fileOrBase64: path) }
            #expect(publicKey?.code.exitCode == 2)
        }
    }

    /// Through the command line: exit 2, and the command to run.
    @Test func runRefusesAKeyOthersCanRead() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            _ = try Self.keyFile(in: folder, mode: 0o644)
            let run = try await HistoryCommandTests.orchestrate(
                ["run", "p.yml", "--signing-key", "release.key"], in: folder)
            #expect(run.status == 2)
            #expect(run.stderr.contains("hint: chmod 600 release.key"), "\(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder + "/h.jsonl"), "nothing ran")
            let pub = try await HistoryCommandTests.orchestrate(
                ["run", "p.yml"], in: folder, environment: ["ORCHESTRATE_SIGNING_KEY_FILE": "release.key.pub"])
            #expect(pub.status == 2)
        }
    }
}
