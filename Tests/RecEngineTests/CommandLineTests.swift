import Foundation
import RecEngine
import RecEngineContract
import TestSupport
import Testing

/// The built `recengine` executable's exit codes on hostile input (issue 13): 2 for bad
/// arguments and bad files, the message on stderr, nothing written that was there before.
@Suite struct RecEngineCommandLineTests {
    static func recengine(
        _ arguments: [String], in folder: String? = nil
    ) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(recengineBinary, arguments, in: folder)
    }

    @Test(arguments: [
        (["--no-such-flag"], "Unknown option '--no-such-flag'"),
        (["train", "--ratings", "r.csv"], "Missing expected argument '--out <out>'"),
        (["evaluate", "--model", "m", "--ratings", "r.csv", "--k", "0"], "--k must be at least 1"),
        (
            ["ingest", "--source", "-", "--store", "s", "--out", "o.csv", "--max-seconds", "1e20"],
            "--max-seconds must be more than 0 and at most a year"
        ),
        (
            ["ingest", "--source", "-", "--store", "s", "--out", "o.csv", "--max-seconds", "nan"],
            "--max-seconds must be more than 0 and at most a year"
        ),
        (
            ["simulate", "--ratings", "r.csv", "--url", "http://127.0.0.1:9", "--duration", "1e20"],
            "--duration must be from 0 to a year"
        ),
    ])
    func usageErrorsExit2(arguments: [String], message: String) async throws {
        let result = try await Self.recengine(arguments)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains(message), "\(result.stderr)")
    }

    /// Every file under `folder`, by relative path, with its bytes.
    static func snapshot(_ folder: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: folder) {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + name, isDirectory: &isFolder), !isFolder.boolValue
            {
                files[name] = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
            }
        }
        return files
    }

    @Test func trainingThatDivergesFailsAndLeavesTheModelInOutAsItWas() async throws {
        try await withTemporaryDirectory { folder in
            try write(csv(syntheticRatings(users: 40, items: 30, perUser: 10)), to: folder + "/ratings.csv")
            let good = try await Self.recengine(
                ["train", "--ratings", "ratings.csv", "--out", "models/m", "--factors", "5"], in: folder)
            #expect(good.status == 0, "\(good.stderr)")
            let before = try Self.snapshot(folder + "/models")
            #expect(before.count == 2)

            let diverged = try await Self.recengine(
                ["train", "--ratings", "ratings.csv", "--out", "models/m", "--lr", "50"], in: folder)
            #expect(diverged.status == 2)
            #expect(diverged.stderr.contains("error: training diverged at epoch "), "\(diverged.stderr)")
            #expect(
                diverged.stderr.contains("parameters are NaN or infinite (learning rate 50.0"), "\(diverged.stderr)")
            #expect(
                try Self.snapshot(folder + "/models") == before,
                "the old model's files are byte-identical, and nothing was left beside them")
            #expect(try ModelDirectory.load(from: folder + "/models/m").manifest.parameters?.factors == 5)
        }
    }

    @Test func serveRefusesAHostileModelAtStart() async throws {
        try await withTemporaryDirectory { folder in
            try write(csv(syntheticRatings(users: 40, items: 30, perUser: 10)), to: folder + "/ratings.csv")
            #expect(
                try await Self.recengine(
                    ["train", "--ratings", "ratings.csv", "--out", "m", "--factors", "5"], in: folder
                ).status == 0)
            try HostileModelTests.editManifestText(in: folder + "/m") {
                $0.replacingOccurrences(of: "\"m1\"", with: "\"m0\"")
            }
            let result = try await Self.recengine(["serve", "--model", "m", "--port", "0"], in: folder)
            #expect(result.status == 2)
            #expect(result.stderr.contains("m/manifest.json: item_ids lists \"m0\" more than once"), "\(result.stderr)")
        }
    }

    @Test func ratingsThatAreNotARegularFileOrTooLargeAreRefusedWithoutHanging() async throws {
        try await withTemporaryDirectory { folder in
            #expect(mkfifo(folder + "/fifo.csv", 0o644) == 0)
            let huge = folder + "/huge.csv"
            #expect(FileManager.default.createFile(atPath: huge, contents: nil))
            #expect(
                truncate(huge, off_t(RatingsFile.maximumFileSize) + 1) == 0,
                "a sparse file: its size, not its bytes, is refused")
            for (path, reason) in [
                ("fifo.csv", "it is not a regular file"), ("/dev/zero", "it is not a regular file"),
                (folder, "it is not a regular file"),
                ("huge.csv", "it is larger than 2048 MiB"),
            ] {
                let result = try await Self.recengine(["train", "--ratings", path, "--out", "m"], in: folder)
                #expect(result.status == 2, "\(path): \(result.stderr)")
                #expect(result.stderr.contains("\(path): cannot read the ratings file: \(reason)"), "\(result.stderr)")
            }
            let missing = try await Self.recengine(["train", "--ratings", "missing.csv", "--out", "m"], in: folder)
            #expect(missing.status == 1)
            #expect(
                missing.stderr.contains("missing.csv: cannot read the ratings file: it does not exist"),
                "\(missing.stderr)")
        }
    }

    /// What the controller asks before a run changes anything (it does not link the ingest code):
    /// a Kafka source whose brokers do not answer is reported as JSON, exit 4; a file source is
    /// checked when read; a source that is not one exits 2.
    @Test func checkSourceReportsUnreachableBrokersAsJSON() async throws {
        try await withTemporaryDirectory { folder in
            let port = try freePort()
            let unreachable = try await Self.recengine([
                "check-source", "--source", "kafka://127.0.0.1:\(port)/movielog2", "--timeout", "2", "--output", "json",
            ])
            #expect(unreachable.status == 4, "\(unreachable.stderr)")
            let check = try JSONDecoder().decode(SourceCheck.self, from: Data(unreachable.stdout.utf8))
            #expect(check.reachable == false)
            #expect(check.error?.contains("cannot reach the Kafka brokers 127.0.0.1:\(port)") == true, "\(check)")
            let file = try await Self.recengine(["check-source", "--source", folder + "/log", "--output", "json"])
            #expect(file.status == 0, "\(file.stderr)")
            #expect(try JSONDecoder().decode(SourceCheck.self, from: Data(file.stdout.utf8)).reachable)
            let bad = try await Self.recengine(["check-source", "--source", "kafka://nobroker"])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("a Kafka source needs brokers and a topic"), "\(bad.stderr)")
        }
    }
}
