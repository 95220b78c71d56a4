import Foundation
import Orchestrator
import Provenance
import StrictYAML
import TestSupport
import Testing

/// Signed records written by real releases and a real rollback (nginx, Prometheus and `recengine
/// serve` on loopback), checked by `orchestrate history verify --public-key`.
@Suite(.serialized) struct SignedReleaseTests {
    @Test func releasesAndARollbackAreSignedAndVerify() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let key = ReleaseSigningKey.generate()
            let first = try await playground.run(RunOptions(noStagedShift: true, signingKey: key))
            let second = try await playground.run(
                RunOptions(force: true, noStagedShift: true, signingKey: key), environment: ["EPOCHS": "12"])
            #expect(first.signer?.keyID == key.publicKey.keyID)
            #expect(second.outcome == .succeeded)

            let environment = ["RECENGINE_BIN": Playground.recengine, "ORCHESTRATE_SIGNING_KEY": key.base64]
            let rollback = try await runCommand(
                Playground.orchestrate, ["rollback", playground.pipelinePath], environment: environment)
            #expect(rollback.status == 0, "\(rollback.stderr)")
            let history = ReleaseHistory(path: playground.historyPath)
            #expect(try history.records().map(\.signer?.keyID) == Array(repeating: key.publicKey.keyID, count: 3))

            let verify = try await runCommand(
                Playground.orchestrate,
                ["history", "verify", "--history", playground.historyPath, "--public-key", key.publicKey.base64])
            #expect(verify.status == 0, "\(verify.stderr)")
            #expect(
                verify.stdout.contains("3 records, chain intact; signatures checked against key \(key.publicKey.keyID)")
            )

            // Another key's record appended by hand, with its own signed head.
            try ReleaseHistory(path: playground.historyPath, signingKey: ReleaseSigningKey.generate()).append(second)
            let forged = try await runCommand(
                Playground.orchestrate,
                ["history", "verify", "--history", playground.historyPath, "--public-key", key.publicKey.base64])
            #expect(forged.status == 1)
            #expect(forged.stderr.contains("line 4: signed by key"), "\(forged.stderr)")
        }
    }
}
