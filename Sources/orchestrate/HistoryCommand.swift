import ArgumentParser
import CommandLineSupport
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML

struct HistoryOptions: ParsableArguments {
    @Option(help: "The history file.") var history: String?
    @Option(help: "Read the history path from this pipeline file.") var pipeline: String?

    func resolve() throws -> ReleaseHistory {
        if let history { return ReleaseHistory(path: history) }
        if let pipeline { return ReleaseHistory(path: try PipelineLoader().load(pipeline).history) }
        return ReleaseHistory(path: Pipeline.defaultHistory)
    }
}

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show or verify the release history.",
        subcommands: [HistoryListCommand.self, HistoryVerifyCommand.self, HistoryKeygenCommand.self],
        defaultSubcommand: HistoryListCommand.self)
}

struct HistoryListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List releases, newest last; or, with --at, what was serving at a time.",
        discussion: """
            --at TIME answers which release, model, colour and weight served then, from the records' \
            traffic events (rollout steps, promotions, rollbacks, recoveries, repairs). TIME is ISO 8601 \
            (2026-12-01T14:05:00Z, or with an offset). A TIME before the first record exits 2.
            """)

    @OptionGroup var source: HistoryOptions
    @Option(help: "Only the last N releases.") var last: Int?
    @Option(
        help: "What was serving at this time (ISO 8601, e.g. 2026-12-01T14:05:00Z).",
        transform: Timestamp.init(parsing:)) var at: Timestamp?
    @Option(help: "Only releases started at or after this time (ISO 8601).", transform: Timestamp.init(parsing:))
    var since: Timestamp?
    @Option(help: "Only releases started at or before this time (ISO 8601).", transform: Timestamp.init(parsing:))
    var until: Timestamp?
    @Option(help: "text or json.") var output: OutputFormat = .text

    func validate() throws {
        if at != nil && (since != nil || until != nil || last != nil) {
            throw ValidationError("--at answers for one time: it goes without --since, --until and --last")
        }
        if let since, let until, since.date > until.date {
            throw ValidationError("--since \(since.text) is after --until \(until.text)")
        }
        if let last, last < 0 { throw ValidationError("--last \(last): give a number of releases, 0 or more") }
    }

    func run() async throws {
        let history = try source.resolve()
        var warnings = LineWarnings(path: history.path)
        if let at { return try serving(at: at, in: history, warnings: &warnings) }
        var listing = ReleaseListing(format: output)
        let wanted: (ReleaseRecord) -> Bool = { record in
            (since.map { record.startedOn >= $0.date } ?? true) && (until.map { record.startedOn <= $0.date } ?? true)
        }
        if let last {
            // Newest first, only as far back as the last N go.
            var newest: [ReleaseRecord] = []
            if last > 0 {
                try history.forEachLineNewestFirst { line in
                    warnings.warn(line)
                    if let record = line.record, wanted(record) { newest.append(record) }
                    return newest.count < last
                }
            }
            for record in newest.reversed() { try listing.add(record) }
        } else {
            try history.forEachLine { line in
                warnings.warn(line)
                if let record = line.record, wanted(record) { try listing.add(record) }
                return true
            }
        }
        warnings.finish()
        listing.finish(
            empty: "no releases in \(history.path)\(since != nil || until != nil ? " in that time range" : "")")
    }

    /// What `--at` prints: the change in force then, and every colour that took traffic.
    struct Serving: Encodable {
        var at: Date
        var history: String
        /// The change in force; nil when no record had moved traffic yet.
        var since: ServingTimeline.Change?
    }

    /// Reads the history once, keeping only the change in force at `at`.
    func serving(at: Timestamp, in history: ReleaseHistory, warnings: inout LineWarnings) throws {
        var timeline = ServingTimeline(keepingOnlyTheChangeAt: at.date)
        try history.forEachLine { line in
            warnings.warn(line)
            if let record = line.record { timeline.add(record) }
            return true
        }
        warnings.finish()
        let path = history.path
        guard let first = timeline.firstRecord, first <= at.date else {
            let formatter = ISO8601DateFormatter()
            throw OrchestratorError(
                .invalidInput,
                timeline.firstRecord.map {
                    "\(at.text) is before the first record of \(path) (\(formatter.string(from: $0))): the history cannot say what served then"
                }
                    ?? "\(path) holds no release record: it cannot say what served at \(at.text)",
                hint: "orchestrate history lists the releases and when they started")
        }
        let change = timeline.change(at: at.date)
        if output == .json {
            try printJSON(Serving(at: at.date, history: path, since: change))
            return
        }
        let formatter = ISO8601DateFormatter()
        guard let change else {
            print("nothing was serving at \(at.text): no record had moved traffic yet")
            return
        }
        let cause = "since \(formatter.string(from: change.at)): \(change.action) \(change.recordID), \(change.detail)"
        guard !change.serving.isEmpty else {
            print("nothing was serving at \(at.text) (\(cause))")
            return
        }
        print("serving at \(at.text) (\(cause))")
        var rows = [["COLOUR", "WEIGHT", "RELEASE", "MODEL", "SHA256"]]
        for serving in change.serving {
            rows.append([
                serving.color, "\(serving.weight)%", serving.releaseID ?? "unknown", serving.modelVersion ?? "-",
                serving.modelSHA256 ?? "-",
            ])
        }
        tableLines(rows).forEach { print($0) }
    }
}

/// The releases `history` lists: a table for people (its rows kept, a short line per release, as
/// the column widths need them all), or a JSON array written a record at a time.
struct ReleaseListing {
    let format: OutputFormat
    private var rows = [["RELEASE", "STARTED", "TRIGGER", "ACTION", "OUTCOME", "COLOUR", "MODEL", "STAGES"]]
    private var written = 0
    private let formatter = ISO8601DateFormatter()

    init(format: OutputFormat) {
        self.format = format
    }

    mutating func add(_ record: ReleaseRecord) throws {
        written += 1
        if format == .json {
            // An element of the array printJSON would print, indented as it indents.
            let element = "  " + (try jsonText(record)).replacingOccurrences(of: "\n", with: "\n  ")
            print(written == 1 ? "[\n" + element : ",\n" + element, terminator: "")
            return
        }
        let action: String = (record.action ?? .release).rawValue
        let outcome: String = record.dryRun ? "dry-run" : record.outcome.rawValue
        // A policy record has no stages: its last column says what changed.
        let stages: String =
            record.policyChange.map { change in
                let model = change.modelSHA256.map { " model \($0.prefix(12))" } ?? ""
                let reason = change.reason.map { ": \($0)" } ?? ""
                return "\(change.release.map { "release \($0)" } ?? "")\(model)\(reason)"
            } ?? record.stages.map { "\($0.name):\($0.status.rawValue)" }.joined(separator: " ")
        let started: String = formatter.string(from: record.startedOn)
        rows.append([
            record.releaseID, started, record.invocation.trigger, action, outcome, record.deployment?.color ?? "-",
            record.model?.version ?? "-", stages,
        ])
        if let repair = record.historyRepair {
            printError(
                "note: \(record.releaseID) replaced the torn line \(repair.line) of the history (\(repair.bytes) bytes, kept in \(repair.keptIn))"
            )
        }
    }

    func finish(empty: String) {
        if format == .json {
            print(written == 0 ? "[]" : "\n]")
        } else if written == 0 {
            print(empty)
        } else {
            tableLines(rows).forEach { print($0) }
        }
    }
}

/// The warnings `history` prints about lines that are not records: the first hundred, then a
/// count, so that a file of garbage does not flood the terminal.
struct LineWarnings {
    let path: String
    private var count = 0
    static let shown = 100

    init(path: String) {
        self.path = path
    }

    mutating func warn(_ line: ReleaseHistory.Line) {
        guard let problem = line.problem else { return }
        count += 1
        if count <= Self.shown { printError("warning: \(path):\(line.number): \(problem)") }
    }

    func finish() {
        if count > Self.shown { printError("warning: \(path): \(count - Self.shown) more lines are not records") }
    }
}

/// A time on the command line: ISO 8601 with a zone (`2026-12-01T14:05:00Z`, `…+01:00`), with
/// or without fractional seconds, read strictly (`ISO8601Time`).
struct Timestamp: Sendable {
    var date: Date
    var text: String

    init(parsing argument: String) throws {
        date = try ISO8601Time.parse(argument)
        text = argument
    }
}

struct HistoryVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check the hash chain, the head and, with --public-key, every signature.",
        discussion: """
            Detects edited, inserted, removed, appended and torn lines. Without --public-key the chain \
            is checked and the key ids that signed are listed, but signatures are not checked, so a \
            re-chained file passes; with it, every line from the first signed one on must carry a \
            valid signature by that key. Exit 1 when a problem is found, 2 for a bad --public-key.
            """)

    @OptionGroup var source: HistoryOptions
    @Option(help: "The Ed25519 public key records must be signed by: a .pub file from history keygen, or its base64.")
    var publicKey: String?
    @Option(help: "text or json.") var output: OutputFormat = .text

    struct Report: Encodable {
        var path: String
        var records: Int
        var problems: [ReleaseHistory.Problem]
        /// The key id signatures were checked against; absent: they were not checked.
        var trustedKeyID: String?
        var signers: [ReleaseHistory.Verification.SignerCount]
        var unsigned: Int

        enum CodingKeys: String, CodingKey {
            case path, records, problems, signers, unsigned
            case trustedKeyID = "trusted_keyid"
        }
    }

    func run() async throws {
        let history = try source.resolve()
        let trustedKey = try publicKey.map { try ReleasePublicKey(fileOrBase64: $0) }
        let verification = try history.verification(trustedKey: trustedKey)
        let problems = verification.problems
        if output == .json {
            try printJSON(
                Report(
                    path: history.path, records: verification.records, problems: problems,
                    trustedKeyID: verification.trustedKeyID,
                    signers: verification.signers, unsigned: verification.unsigned))
        } else {
            for problem in problems { printError("\(history.path): \(problem)") }
            let signed = verification.signers.map { "\($0.keyid) (\($0.records))" }.joined(separator: ", ")
            let signatures =
                if let keyID = verification.trustedKeyID {
                    "signatures checked against key \(keyID)"
                } else if signed.isEmpty {
                    "no record is signed"
                } else {
                    "signatures not checked (no --public-key); signed by \(signed)"
                }
            let unsigned = verification.unsigned > 0 && !signed.isEmpty ? ", \(verification.unsigned) unsigned" : ""
            print(
                "\(history.path): \(verification.records) records, \(problems.isEmpty ? "chain intact" : "\(problems.count) problem(s)"); \(signatures)\(unsigned)"
            )
        }
        if !problems.isEmpty {
            let torn = problems.contains { $0.message.hasPrefix(ReleaseHistory.tornLineProblem) }
            throw OrchestratorError(
                .historyCorrupt, "\(history.path) failed verification with \(problems.count) problem(s)",
                hint: (torn
                    ? "the torn last line: orchestrate recover PIPELINE repairs it (its bytes are kept) and records the repair; "
                    : "")
                    + "compare with a backup or the CI artifacts; records after a problem are still readable")
        }
    }
}

struct HistoryKeygenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Write an Ed25519 key pair that signs release records.",
        discussion: """
            Writes FILE (the private key, base64, mode 0600; never overwrites one) and FILE.pub (the \
            public key), and prints the public key and its key id. Sign with run --signing-key FILE \
            (or ORCHESTRATE_SIGNING_KEY_FILE, or ORCHESTRATE_SIGNING_KEY holding the private key's \
            base64); check with history verify --public-key FILE.pub.
            """)

    @Option(help: "The private key file to write.") var out: String

    func run() async throws {
        let key = ReleaseSigningKey.generate()
        try KeyFile.create(out, contents: key.base64 + "\n", mode: 0o600)
        try KeyFile.create(out + ".pub", contents: key.publicKey.base64 + "\n", mode: 0o644)
        print("public key: \(key.publicKey.base64)")
        print("key id:     \(key.publicKey.keyID)")
        printError("wrote \(out) (private, mode 0600) and \(out).pub")
    }
}
