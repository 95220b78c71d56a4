import Foundation
import RecEngine
import RecEngineContract
import TestSupport
import Testing

var recengineBinary: String {
    ProcessInfo.processInfo.environment["RECENGINE_BIN"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent(".build/debug/recengine").path
}

@Suite struct MovieLogIngestTests {
    @Test func readsAGrowingFileOnceAndEveryRatingExactly() async throws {
        try await withTemporaryDirectory { folder in
            let ratings = movieLogRatings(users: 1..<41, perUser: 6, seed: 3)
            let lines = MovieLogGenerator(malformedShare: 0.08, seed: 5).lines(for: ratings)
            let cut = lines.count * 6 / 10
            try write(lines[..<cut].joined(separator: "\n") + "\n", to: folder + "/log/movielog.log")
            func ingest() throws -> IngestReport {
                try MovieLogIngest(
                    source: .files(folder + "/log"), store: folder + "/store", output: folder + "/ratings.csv",
                    watches: folder + "/watches.csv"
                ).run()
            }
            let first = try ingest()
            #expect(first.lines == cut)
            #expect(first.generation == 1)

            // The rest arrives, the last line not yet complete: it waits for its newline.
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/log/movielog.log"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(lines[cut...].joined(separator: "\n").utf8))
            let second = try ingest()
            #expect(second.lines == lines.count - cut - 1)
            #expect(second.notes.contains { $0.contains("no newline") })
            try handle.write(contentsOf: Data("\n".utf8))
            try handle.close()
            let third = try ingest()
            #expect(third.lines == 1)
            let fourth = try ingest()
            #expect(fourth.lines == 0 && fourth.generation == 3, "nothing new: no new generation")

            let reports = [first, second, third, fourth]
            #expect(reports.map(\.ratingsNew).reduce(0, +) == ratings.count)
            #expect(reports.map(\.ratingsUpdated).reduce(0, +) == 0)
            let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
            #expect(ratingTable(written) == ratingTable(ratings))
            let expected = expectedCounts(lines)
            #expect(dataRowCount(folder + "/watches.csv") == expected.watches)
            var rejected: [String: Int] = [:]
            for report in reports { rejected.merge(report.rejectedByReason, uniquingKeysWith: +) }
            #expect(rejected == expected.rejected)
            #expect(!rejected.isEmpty)
            // Rejected lines are kept with their source position.
            let rejects = read(try #require(first.rejectsFile))
            #expect(rejects.split(separator: "\n").count == first.rejected)
            #expect(rejects.split(separator: "\n").allSatisfy { $0.hasPrefix(folder + "/log/movielog.log@") })
            let metrics = third.metrics
            #expect(metrics["rejected_share"] == 0)
            #expect(metrics["ratings"] == Double(ratings.count))
        }
    }

    @Test func gzipFilesInAFolderAndTheLatestRatingWins() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                """
                2022-03-18T05:00:00,17,GET /rate/up+2009=2
                2022-03-18T05:00:01,17,GET /data/m/up+2009/0.mpg
                2022-03-18T05:00:02,34,GET /rate/heat+1995=4
                """ + "\n", to: folder + "/log/part-1.log")
            // The last line of a finished gzip file counts without a newline.
            try write(
                """
                2022-03-19T07:00:00,17,GET /rate/up+2009=5
                2022-03-17T07:00:00,34,GET /rate/heat+1995=1
                2022-03-19T07:00:02,51,GET /rate/alien+1979=3
                """, to: folder + "/log/part-2.log")
            #expect(try await runCommand("/bin/gzip", [folder + "/log/part-2.log"]).status == 0)
            let report = try MovieLogIngest(
                source: .files(folder + "/log"), store: folder + "/store", output: folder + "/ratings.csv"
            ).run()
            #expect(report.lines == 6)
            #expect(report.ratingsNew == 3)
            #expect(report.ratingsUpdated == 1, "the later 5 replaces the 2; the older 1 does not replace the 4")
            #expect(report.positions[folder + "/log/part-2.log.gz"] != nil)
            let written = ratingTable(try RatingsFile.load(path: folder + "/ratings.csv").ratings)
            #expect(written == ["17,up+2009": 5, "34,heat+1995": 4, "51,alien+1979": 3])
            #expect(report.unknownUsersShare == 0, "a first run has no reference")

            // A gzip file cut short (still being written) is read up to its last complete line; a
            // damaged one stops the run before anything of it is committed.
            let gzipped = try #require(FileManager.default.contents(atPath: folder + "/log/part-2.log.gz"))
            try FileManager.default.createDirectory(atPath: folder + "/partial", withIntermediateDirectories: true)
            try gzipped.prefix(gzipped.count - 10).write(to: URL(fileURLWithPath: folder + "/partial/part-9.log.gz"))
            let partial = try MovieLogIngest(
                source: .files(folder + "/partial"), store: folder + "/partial-store", output: folder + "/partial.csv"
            ).run()
            #expect(partial.notes.contains { $0.contains("the gzip stream is not finished") }, "\(partial.notes)")
            #expect(partial.rejected == 0, "the cut line is not rejected: it is left for the next run")
            #expect(partial.lines == 2)
            var damaged = gzipped
            for index in 12..<damaged.count - 12 { damaged[index] ^= 0x5a }
            try FileManager.default.createDirectory(atPath: folder + "/damaged", withIntermediateDirectories: true)
            try damaged.write(to: URL(fileURLWithPath: folder + "/damaged/part-9.log.gz"))
            #expect {
                try MovieLogIngest(
                    source: .files(folder + "/damaged"), store: folder + "/damaged-store",
                    output: folder + "/damaged.csv"
                ).run()
            } throws: { error in
                "\(error)".contains("the gzip data is damaged after offset")
                    && "\(error)".contains("nothing of this run was committed")
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/damaged-store/state.json"))

            // A later batch of a known user and a new one.
            try write(
                "2022-03-20T07:00:00,17,GET /rate/heat+1995=4\n2022-03-20T07:00:01,68,GET /rate/up+2009=4\n",
                to: folder + "/log/part-3.log")
            let next = try MovieLogIngest(
                source: .files(folder + "/log"), store: folder + "/store", output: folder + "/ratings.csv"
            ).run()
            #expect(next.lines == 2)
            #expect(next.unknownUsersShare == 0.5)
            #expect(next.unknownMoviesShare == 0)
        }
    }

    @Test func aKillAtEitherCommitBoundaryNeitherLosesNorDuplicates() async throws {
        for fault in [KillAtRename.When.before, .after] {
            try await withTemporaryDirectory { folder in
                let ratings = movieLogRatings(users: 1..<41, perUser: 6, seed: 9)
                let lines = MovieLogGenerator(malformedShare: 0.05, seed: 2).lines(for: ratings)
                let cut = lines.count / 2
                try write(lines[..<cut].joined(separator: "\n") + "\n", to: folder + "/log/a.log")
                let arguments = [
                    "ingest", "--source", folder + "/log", "--store", folder + "/store", "--out",
                    folder + "/ratings.csv",
                    "--watches", folder + "/watches.csv",
                ]
                #expect(try await runCommand(recengineBinary, arguments).status == 0)
                try write(lines[cut...].joined(separator: "\n") + "\n", to: folder + "/log/b.log")
                let killed = try await runCommand(
                    recengineBinary, arguments,
                    environment: try KillAtRename.environment(suffix: "/store/state.json", when: fault))
                #expect(killed.status != 0, "the fault injection kills the run (\(fault))")
                let rerun = try await runCommand(recengineBinary, arguments + ["--output", "json"])
                #expect(rerun.status == 0, "\(rerun.stderr)")
                let report = try JSONDecoder().decode(IngestReport.self, from: Data(rerun.stdout.utf8))
                // Killed before the commit, the rerun reads b.log again; after it, nothing is left.
                #expect(report.lines == (fault == .before ? lines.count - cut : 0))
                let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
                #expect(ratingTable(written) == ratingTable(ratings))
                #expect(written.count == ratings.count)
                #expect(
                    dataRowCount(folder + "/watches.csv") == expectedCounts(lines).watches,
                    "no watch lost or read twice (\(fault))")
            }
        }
    }

    @Test func historicalRebuildsAndAShrunkFileIsAnError() async throws {
        try await withTemporaryDirectory { folder in
            let lines = MovieLogGenerator(malformedShare: 0, seed: 4).lines(
                for: movieLogRatings(users: 1..<11, perUser: 6))
            try write(lines.joined(separator: "\n") + "\n", to: folder + "/movielog.log")
            func ingest(_ mode: IngestMode) throws -> IngestReport {
                try MovieLogIngest(
                    source: .files(folder + "/movielog.log"), store: folder + "/store", output: folder + "/ratings.csv",
                    mode: mode
                ).run()
            }
            _ = try ingest(.stream)
            let before = read(folder + "/ratings.csv")
            let rebuilt = try ingest(.historical)
            #expect(rebuilt.lines == lines.count)
            #expect(rebuilt.ratingsNew == 60)
            #expect(read(folder + "/ratings.csv") == before)
            let segments = try FileManager.default.contentsOfDirectory(atPath: folder + "/store/segments")
            #expect(segments.allSatisfy { $0.hasPrefix("000002.") }, "the replaced generation is removed: \(segments)")

            try write(lines[..<3].joined(separator: "\n") + "\n", to: folder + "/movielog.log")
            #expect {
                try ingest(.stream)
            } throws: { error in
                "\(error)".contains("shorter") && "\(error)".contains("historical")
            }
            #expect(try ingest(.historical).lines == 3)
        }
    }

    @Test func standardInputIsReadToItsEnd() async throws {
        try await withTemporaryDirectory { folder in
            try write(
                "2022-03-18T05:00:00,17,GET /rate/up+2009=2\nbroken\n2022-03-18T05:00:02,34,GET /rate/heat+1995=4",
                to: folder + "/in.log")
            let result = try await runCommand(
                "/bin/sh",
                ["-c", "exec \"$0\" ingest --source - --store store --out ratings.csv < in.log", recengineBinary],
                in: folder)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("read 3 lines: 2 new ratings"))
            #expect(result.stdout.contains("1 rejected (truncated 1)"))
        }
    }

    @Test func populationStabilityIndex() {
        #expect(RecEngine.populationStabilityIndex([10, 10, 10, 10, 10], against: [0.2, 0.2, 0.2, 0.2, 0.2]) == 0)
        let shifted = RecEngine.populationStabilityIndex([0, 0, 10, 10, 80], against: [0.2, 0.2, 0.2, 0.2, 0.2])
        // (0.0001-0.2)·ln(0.0001/0.2)·2 + (0.1-0.2)·ln(0.5)·2 + (0.8-0.2)·ln(4)
        let expected = 2 * (0.0001 - 0.2) * log(0.0001 / 0.2) + 2 * (0.1 - 0.2) * log(0.5) + 0.6 * log(4.0)
        #expect(abs(shifted - expected) < 1e-9)
        #expect(shifted > 0.25)
        #expect(RecEngine.populationStabilityIndex([0, 0, 0, 0, 0], against: [0.2, 0.2, 0.2, 0.2, 0.2]) == 0)
    }
}
