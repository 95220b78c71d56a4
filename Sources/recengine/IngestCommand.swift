import ArgumentParser
import CommandLineSupport
import Foundation
import RecEngine
import RecEngineContract

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract:
            "Consume the movie log (file, folder, gzip, standard input or Kafka) into a ratings file, exactly once.",
        discussion: """
            What was read is kept in --store with the position reached; the next run goes on from \
            there (--mode stream) or rebuilds from the beginning (--mode historical). Malformed \
            lines, and lines longer than 1 MiB, are counted by reason and kept with their position \
            in the store's rejects file. Only regular files are read (a FIFO or a device is \
            refused); standard input is read until its end or --max-seconds. Every file written \
            is created with mode 0600, or the source files' permissions where they are stricter. \
            Exit codes: 0 done, 1 a file could not be read or written, 2 bad arguments or data (a \
            source that is not a regular file, a gzip file that expands more than 100 times), \
            4 Kafka unreachable or lost part way (what was read before is committed).
            """)

    @Option(
        help:
            "A log file, a folder of log files (*.gz are gzip), - for standard input, or kafka://HOST:PORT[,HOST:PORT]/TOPIC."
    )
    var source: String
    @Option(help: "movielog: the movie log; ratings: a ratings file (CSV or u.data) checked and copied to --out.")
    var format: SourceFormat = .movielog
    @Option(help: "With --format ratings: fail on a malformed row, or skip and count it.") var onBadRow: BadRowPolicy =
        .fail
    @Option(help: "The folder that keeps what was read and the committed position (movielog).") var store: String?
    @Option(help: "The ratings CSV to write (the latest rating per user and movie).") var out: String
    @Option(help: "The watch events CSV to write.") var watches: String?
    @Option(help: "A copy of this run's rejected lines.") var rejects: String?
    @Option(help: "stream: go on from the committed position; historical: rebuild from the beginning.") var mode:
        IngestMode = .stream
    @Option(help: "The Kafka consumer group.") var group = "recengine-ingest"
    @Option(help: "At most this many lines or messages (0: no bound).") var maxRecords = 0
    @Option(help: "At most this many seconds (also when standard input stays open).") var maxSeconds = 300.0
    @Option(help: "The shares of ratings 1 to 5 in the last release, comma-separated: the reference of the rating PSI.")
    var baselineShares: String?

    enum SourceFormat: String, ExpressibleByArgument, CaseIterable {
        case movielog, ratings
    }
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard maxRecords >= 0 else { throw ValidationError("--max-records must be 0 or more") }
        guard maxSeconds > 0 && maxSeconds <= 86_400 * 365 else {
            throw ValidationError("--max-seconds must be more than 0 and at most a year")
        }
        if format == .movielog && store == nil { throw ValidationError("--store is required for the movie log") }
        if let shares = baselineShares, parsedShares(shares) == nil {
            throw ValidationError("--baseline-shares must be five numbers from 0 to 1, e.g. 0.06,0.11,0.27,0.34,0.22")
        }
    }

    func parsedShares(_ text: String) -> [Double]? {
        let values = text.split(separator: ",").compactMap { Double($0) }
        return values.count == 5 && values.allSatisfy { $0.isFinite && $0 >= 0 && $0 <= 1 } ? values : nil
    }

    func run() async throws {
        if format == .ratings {
            try await importRatings()
            return
        }
        let report = try await reportingErrors {
            let ingest = MovieLogIngest(
                source: try MovieLogSource(parsing: source), store: store ?? "", output: out, watches: watches,
                rejects: rejects,
                mode: mode, group: group, maxRecords: maxRecords, maxDuration: .milliseconds(Int64(maxSeconds * 1000)),
                baselineShares: baselineShares.flatMap(parsedShares))
            return try ingest.run()
        }
        if output.output == .json {
            try printJSON(report, metrics: report.metrics)
        } else {
            let rejected = report.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
                separator: ", ")
            print(
                "read \(report.lines) lines: \(report.ratingsNew) new ratings, \(report.ratingsUpdated) updated, \(report.watches) watches, \(report.recommendations) recommendations, \(report.rejected) rejected\(rejected.isEmpty ? "" : " (\(rejected))")"
            )
            print(
                "wrote \(report.ratings) ratings of \(report.users) users and \(report.movies) movies to \(out) (store generation \(report.generation))"
            )
            if let rejectsFile = report.rejectsFile, report.rejected > 0 {
                print("rejected lines: \(rejectsFile)")
                for line in report.rejectedSample ?? [] {
                    print("  \(line.origin) \(line.reason)\(line.text.map { ": \($0)" } ?? "")")
                }
            }
            for note in report.notes { print("note: \(note)") }
        }
        if let interruption = report.interruption {
            printError(
                "error: the source failed part way: \(interruption)\n  what was read before it is committed; run again to go on"
            )
            throw ExitCode(4)
        }
    }

    /// `--format ratings`: a ratings file checked and copied as CSV.
    func importRatings() async throws {
        try await reportingErrors {
            let file = try RatingsFile.load(path: source, onBadRow: onBadRow)
            try RatingsFile.writeCSV(file.ratings, to: out)
            let rows = file.ratings.count + file.skippedRowCount
            let metrics = [
                RatingsImportMetric.ratings.rawValue: Double(file.ratings.count),
                RatingsImportMetric.users.rawValue: Double(file.ratings.userCount),
                RatingsImportMetric.items.rawValue: Double(file.ratings.itemCount),
                RatingsImportMetric.skippedRows.rawValue: Double(file.skippedRowCount),
                RatingsImportMetric.skippedShare.rawValue: rows == 0 ? 0 : Double(file.skippedRowCount) / Double(rows),
            ]
            if output.output == .json {
                struct Summary: Encodable {
                    var source: String
                    var output: String
                }
                try printJSON(Summary(source: source, output: out), metrics: metrics)
            } else {
                print(
                    "copied \(file.ratings.count) ratings of \(file.ratings.userCount) users and \(file.ratings.itemCount) items to \(out)"
                )
                if file.skippedRowCount > 0 { print("skipped \(file.skippedRowCount) malformed rows") }
            }
        }
    }
}
