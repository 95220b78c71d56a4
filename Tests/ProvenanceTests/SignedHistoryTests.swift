import Foundation
import OrchestratorSupport
import Provenance
import StrictYAML
import TestSupport
import Testing

/// Signed release records: every way of forging provenance is detected with the trusted key.
@Suite struct SignedHistoryTests {
    static let key = ReleaseSigningKey.generate()
    static let otherKey = ReleaseSigningKey.generate()

    func signedHistory(in folder: String, records: Int, key: ReleaseSigningKey = Self.key) throws -> ReleaseHistory {
        let history = ReleaseHistory(path: folder + "/h.jsonl", signingKey: key)
        for index in 0..<records { try history.append(ReleaseHistoryTests.record("rel-\(index)")) }
        return history
    }

    func lines(_ path: String) -> [String] {
        read(path).split(separator: "\n").map(String.init)
    }

    func writeLines(_ lines: [String], to path: String) throws {
        try write(lines.joined(separator: "\n") + "\n", to: path)
    }

    /// The line's envelope with its payload changed and the signature kept: an edit without the key.
    func edited(_ line: String, _ from: String, _ to: String) throws -> String {
        var envelope = try JSONDecoder().decode(SignedEnvelope.self, from: Data(line.utf8))
        envelope.payload = Data(
            String(decoding: envelope.payload, as: UTF8.self).replacingOccurrences(of: from, with: to).utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(envelope), as: UTF8.self)
    }

    func messages(_ verification: ReleaseHistory.Verification) -> [String] {
        verification.problems.map(\.description)
    }

    @Test func signedRecordsNameTheirSignerAndVerify() async throws {
        try await withTemporaryDirectory { folder in
            let history = try signedHistory(in: folder, records: 3)
            let line = try #require(lines(history.path).first)
            let envelope = try JSONDecoder().decode(SignedEnvelope.self, from: Data(line.utf8))
            #expect(envelope.payloadType == "application/vnd.orchestrate.release+json")
            #expect(envelope.signatures.map(\.keyid) == [Self.key.publicKey.keyID])
            let records = try history.records()
            #expect(records.map(\.releaseID) == ["rel-0", "rel-1", "rel-2"])
            #expect(records.allSatisfy { $0.signer?.publicKey == Self.key.publicKey.base64 })

            let checked = try history.verification(trustedKey: Self.key.publicKey)
            #expect(checked.problems.isEmpty, "\(messages(checked))")
            #expect(checked.trustedKeyID == Self.key.publicKey.keyID)
            let unchecked = try history.verification()
            #expect(unchecked.problems.isEmpty)
            #expect(unchecked.trustedKeyID == nil)
            #expect(unchecked.signers == [.init(keyid: Self.key.publicKey.keyID, records: 3)])
        }
    }

    @Test func anEditedLineIsDetected() async throws {
        try await withTemporaryDirectory { folder in
            let history = try signedHistory(in: folder, records: 3)
            var all = lines(history.path)
            all[2] = try edited(all[2], "rel-2", "rel-9")
            try writeLines(all, to: history.path)
            let found = messages(try history.verification(trustedKey: Self.key.publicKey))
            #expect(
                found.contains {
                    $0.hasPrefix(
                        "line 3: the signature by \(Self.key.publicKey.keyID) does not match the line: it was edited")
                })
            #expect(found.contains { $0.hasPrefix("line 3: differs from the line the head file recorded") })
        }
    }

    @Test func anAppendedLineWithACorrectChainAndHeadIsDetected() async throws {
        try await withTemporaryDirectory { folder in
            let history = try signedHistory(in: folder, records: 3)
            // The forger computes the chain link and writes a matching head, without the key.
            let forger = ReleaseHistory(path: history.path)
            try forger.append(ReleaseHistoryTests.record("rel-forged"))
            #expect(try history.verify().isEmpty, "the chain alone cannot tell")
            let found = messages(try history.verification(trustedKey: Self.key.publicKey))
            #expect(
                found.contains(
                    "line 4: unsigned, after the signed line 3: written without the signing key (appended or replaced by hand)"
                ))
            #expect(
                found.count == 1,
                "the last line is unsigned, so the forger's unsigned head is not a problem of its own: \(found)")
        }
    }

    @Test func aLineSignedByAnotherKeyIsDetected() async throws {
        try await withTemporaryDirectory { folder in
            let history = try signedHistory(in: folder, records: 2)
            try ReleaseHistory(path: history.path, signingKey: Self.otherKey).append(
                ReleaseHistoryTests.record("rel-other"))
            let found = messages(try history.verification(trustedKey: Self.key.publicKey))
            #expect(
                found.contains(
                    "line 3: signed by key \(Self.otherKey.publicKey.keyID), not by the trusted key \(Self.key.publicKey.keyID)"
                ))
            #expect(found.contains { $0.contains("is not validly signed by the trusted key") })
            let unchecked = try history.verification()
            #expect(unchecked.signers.map(\.keyid) == [Self.key.publicKey.keyID, Self.otherKey.publicKey.keyID])
        }
    }

    @Test(arguments: [false, true]) func aRechainedFileWithAFixedHeadIsDetected(resigned: Bool) async throws {
        try await withTemporaryDirectory { folder in
            let original = try signedHistory(in: folder, records: 3)
            var records = try original.records()
            records[1].outcome = .failed
            // Rewritten from scratch: a valid chain and head, unsigned or signed by the forger's key.
            try FileManager.default.removeItem(atPath: original.path)
            let forger = ReleaseHistory(path: original.path, signingKey: resigned ? Self.otherKey : nil)
            for var record in records {
                record.signer = nil
                try forger.append(record)
            }
            #expect(try original.verify().isEmpty, "the chain alone cannot tell")
            let found = messages(try original.verification(trustedKey: Self.key.publicKey))
            #expect(
                found.contains { $0.hasPrefix("no record is signed by the trusted key \(Self.key.publicKey.keyID)") })
            if resigned {
                #expect(found.contains { $0.hasPrefix("line 1: signed by key \(Self.otherKey.publicKey.keyID)") })
            }
        }
    }

    @Test func aRemovedLineIsDetectedEvenWithTheHeadFixed() async throws {
        try await withTemporaryDirectory { folder in
            let history = try signedHistory(in: folder, records: 4)
            var all = lines(history.path)
            all.remove(at: 1)
            try writeLines(all, to: history.path)
            #expect(
                messages(try history.verification(trustedKey: Self.key.publicKey)).contains {
                    $0.hasPrefix("line 2: previous_sha256 does not match line 1")
                })

            // The last line removed and an unsigned head written for what is left.
            let tail = try signedHistory(in: folder + "/b", records: 3)
            let kept = Array(lines(tail.path).prefix(2))
            try writeLines(kept, to: tail.path)
            let digest = try #require(try sha256(kept[1], scratch: folder + "/line"))
            try write("{\"last_sha256\":\"\(digest)\",\"lines\":2}", to: tail.path + ".head")
            let found = messages(try tail.verification(trustedKey: Self.key.publicKey))
            #expect(found == ["the head file \(tail.path).head is not signed, but the last line is: it was rewritten"])
        }
    }

    @Test func unsignedRecordsBeforeSigningStayReadable() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/h.jsonl"
            try ReleaseHistory(path: path).append(ReleaseHistoryTests.record("old-0"))
            try ReleaseHistory(path: path).append(ReleaseHistoryTests.record("old-1"))
            let signed = ReleaseHistory(path: path, signingKey: Self.key)
            try signed.append(ReleaseHistoryTests.record("new-0"))
            #expect(try signed.records().map(\.releaseID) == ["old-0", "old-1", "new-0"])
            let verification = try signed.verification(trustedKey: Self.key.publicKey)
            #expect(verification.problems.isEmpty, "\(messages(verification))")
            #expect(verification.unsigned == 2)
        }
    }

    @Test func theKeyComesFromTheOptionTheFileVariableOrTheKeyVariable() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.key.base64 + "\n", to: folder + "/k")
            chmod(folder + "/k", 0o600)
            let fromFile = try ReleaseSigningKey.resolve(
                file: folder + "/k", environment: ["ORCHESTRATE_SIGNING_KEY": Self.otherKey.base64])
            #expect(fromFile?.publicKey == Self.key.publicKey)
            let fromFileVariable = try ReleaseSigningKey.resolve(
                file: nil, environment: ["ORCHESTRATE_SIGNING_KEY_FILE": folder + "/k"])
            #expect(fromFileVariable?.publicKey == Self.key.publicKey)
            let fromVariable = try ReleaseSigningKey.resolve(
                file: nil, environment: ["ORCHESTRATE_SIGNING_KEY": Self.otherKey.base64])
            #expect(fromVariable?.publicKey == Self.otherKey.publicKey)
            #expect(try ReleaseSigningKey.resolve(file: nil, environment: [:]) == nil)
            for bad in ["not base64!", Data(count: 31).base64EncodedString()] {
                let error = #expect(throws: OrchestratorError.self) {
                    try ReleaseSigningKey.resolve(file: nil, environment: ["ORCHESTRATE_SIGNING_KEY": bad])
                }
                #expect(error?.code == .invalidInput)
                #expect(error?.message.hasPrefix("ORCHESTRATE_SIGNING_KEY is not") == true)
            }
            #expect(try ReleasePublicKey(fileOrBase64: Self.key.publicKey.base64) == Self.key.publicKey)
            #expect(throws: OrchestratorError.self) { try ReleasePublicKey(fileOrBase64: folder + "/missing.pub") }
        }
    }

    /// The SHA-256 of a line's bytes, as the chain and the head record it.
    func sha256(_ line: String, scratch: String) throws -> String? {
        try write(line, to: scratch)
        return try ArtifactDigest.of(scratch).sha256
    }
}
