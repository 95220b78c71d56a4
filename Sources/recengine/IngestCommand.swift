import ArgumentParser
import Foundation
import RecEngine

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Consume the movie log (file, folder, gzip, standard input or Kafka) into a ratings file, exactly once.",
        discussion: """
            What was read is kept in --store with the position reached; the next run goes on from \
            there (--mode stream) or rebuilds from the beginning (--mode historical). Malformed \
            lines are counted by reason and kept with their position in the store's rejects file. \
            Exit codes: 0 done, 1 a file could not be read or written, 2 bad arguments or data, \
            4 Kafka unreachable or lost part way (what was read before is committed).
            """)

    @Option(help: "A log file, a folder of log files (*.gz are gzip), - for standard input, or kafka://HOST:PORT[,HOST:PORT]/TOPIC.")
    var source: String
    @Option(help: "The folder that keeps what was read and the committed position.") var store: String
    @Option(help: "The ratings CSV to write (the latest rating per user and movie).") var out: String
    @Option(help: "The watch events CSV to write.") var watches: String?
    @Option(help: "A copy of this run's rejected lines.") var rejects: String?
    @Option(help: "stream: go on from the committed position; historical: rebuild from the beginning.") var mode: IngestMode = .stream
    @Option(help: "The Kafka consumer group.") var group = "recengine-ingest"
    @Option(help: "At most this many lines or messages (0: no bound).") var maxRecords = 0
    @Option(help: "At most this many seconds.") var maxSeconds = 300.0
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard maxRecords >= 0 else { throw ValidationError("--max-records must be 0 or more") }
        guard maxSeconds > 0 else { throw ValidationError("--max-seconds must be more than 0") }
    }

    func run() async throws {
        let report = try await reportingErrors {
            let ingest = MovieLogIngest(
                source: try MovieLogSource(parsing: source), store: store, output: out, watches: watches, rejects: rejects,
                mode: mode, group: group, maxRecords: maxRecords, maxDuration: .milliseconds(Int64(maxSeconds * 1000)))
            return try ingest.run()
        }
        if output.output == .json {
            try printJSON(report)
        } else {
            let rejected = report.rejectedByReason.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print(
                "read \(report.lines) lines: \(report.ratingsNew) new ratings, \(report.ratingsUpdated) updated, \(report.watches) watches, \(report.recommendations) recommendations, \(report.rejected) rejected\(rejected.isEmpty ? "" : " (\(rejected))")"
            )
            print("wrote \(report.ratings) ratings of \(report.users) users and \(report.movies) movies to \(out) (store generation \(report.generation))")
            if let rejectsFile = report.rejectsFile, report.rejected > 0 { print("rejected lines: \(rejectsFile)") }
            for note in report.notes { print("note: \(note)") }
        }
        if let interruption = report.interruption {
            printError("error: the source failed part way: \(interruption)\n  what was read before it is committed; run again to go on")
            throw ExitCode(4)
        }
    }
}

