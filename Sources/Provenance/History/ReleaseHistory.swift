import DurableFiles
public import Foundation
public import OrchestratorSupport
import StrictYAML

/// The release history: one JSON record per line, each carrying the SHA-256 of the line before,
/// plus a small head file (`<history>.head`) naming the line count, the file's length and the
/// last line's digest so that removing records from the end is detected too.
///
/// With a signing key, each line is a DSSE envelope around the record's JSON (which then names
/// its signer) and the head is one too: the chain link is inside what is signed, so editing,
/// inserting, removing or appending a line, or re-chaining the file, needs the private key.
/// Unsigned lines (written without a key, or by earlier versions) stay readable.
///
/// It is read a line at a time through a buffer of fixed size, forward or from the end, and a line
/// longer than `maxLineBytes` is never held: a history of any size costs the same memory, and
/// what wants the newest records reads only them. An append reads only the file's first and last
/// lines (and the head), so it costs the same with ten records or a million.
///
/// Appends cannot tear: the line is written and flushed, then the head, and on any failure (a full
/// disk, an I/O error) the file is cut back to its previous length. A crash in the middle of the write (`kill
/// -9`, a power loss) can still leave a last line with no newline; it is a torn line, never read
/// as a record, and the next append (`orchestrate recover` makes one) keeps its bytes in
/// `<history>.torn-TIME-OFFSET`, writes the new record in its place and names the repair in that record
/// (`history_repair`). A file that is not a history is never appended to.
public struct ReleaseHistory: Sendable {
    public var path: String
    /// Signs every record this appends; nil: records are unsigned.
    public var signingKey: ReleaseSigningKey?

    /// The longest line read whole (16 MiB, a thousand times a large record): a longer one is
    /// reported, with its length and digest, and never held in memory.
    public static let maxLineBytes = 16 << 20

    public init(path: String, signingKey: ReleaseSigningKey? = nil) {
        self.path = path
        self.signingKey = signingKey
    }

    var headPath: String { path + ".head" }

    /// One line of the file as read back.
    public struct Line: Sendable {
        public var number: Int
        /// Its bytes without the newline; only the first few hundred of a line longer than `maxLineBytes`.
        public var bytes: Data
        /// Its length in bytes, without the newline.
        public var length: Int
        public var record: ReleaseRecord?
        /// The DSSE envelope the record came in; nil for an unsigned record.
        public var envelope: SignedEnvelope?
        /// Why the line is not a record: a torn write, too long, or not our JSON.
        public var problem: String?
        /// What it is, for deciding whether the file is a history and what to repair.
        var kind: Kind
        /// The digest of a line longer than `maxLineBytes`, computed as it went by.
        let overlongSHA256: String?

        /// The SHA-256 of its bytes (what the next record's `previous_sha256` names); nil only
        /// for a line cut short before its end was read.
        public var sha256: String? { length == bytes.count ? sha256Hex(bytes) : overlongSHA256 }

        enum Kind: Equatable {
            case record
            /// The last line, with no newline: what a crash leaves of an append.
            case tornTail
            /// The start of a JSON object that does not parse, or a line too long to read: a
            /// damaged record, but nothing says the file is not a history.
            case damagedRecord
            /// Anything else: the file is not a release history.
            case foreign
        }
    }

    /// How the problem of a torn last line starts.
    public static let tornLineProblem = "the last line is incomplete"

    /// A line as read, parsed: its record, or what is wrong with it. A line is a record only
    /// once its newline was written.
    static func parse(_ raw: HistoryFile.RawLine, number: Int) -> Line {
        var line = Line(
            number: number, bytes: raw.bytes, length: raw.length, kind: .record, overlongSHA256: raw.overlongSHA256)
        let startsAnObject = raw.bytes.first == UInt8(ascii: "{")
        guard raw.isWhole else {
            line.problem = "\(raw.length) bytes long, more than the \(maxLineBytes) a record may have: not read"
            line.kind = startsAnObject ? (raw.isTerminated ? .damagedRecord : .tornTail) : .foreign
            return line
        }
        guard raw.isTerminated else {
            line.problem =
                "\(tornLineProblem) (\(raw.length) bytes and no newline: a write cut short by a crash or a full disk); "
                + "orchestrate recover keeps its bytes aside, removes it and records the repair"
            line.kind = startsAnObject ? .tornTail : .foreign
            return line
        }
        if let envelope = SignedEnvelope.decode(raw.bytes) {
            line.envelope = envelope
            if envelope.payloadType != SignedEnvelope.releasePayloadType {
                line.problem = "a signed envelope of type \(envelope.payloadType), not a release record"
                line.kind = .foreign
            } else if let record = try? ReleaseRecord.decode(envelope.payload) {
                line.record = record
            } else {
                line.problem = "the signed payload is not a release record"
                line.kind = .foreign
            }
        } else if let record = try? ReleaseRecord.decode(raw.bytes) {
            line.record = record
        } else {
            line.problem = "not a release record (a torn write or an edit)"
            line.kind =
                startsAnObject && (try? JSONSerialization.jsonObject(with: raw.bytes)) == nil
                ? .damagedRecord : .foreign
        }
        return line
    }

    // MARK: Reading

    /// Calls `body` with each line, oldest first, read one at a time, until it returns false. An
    /// absent file has no line.
    ///
    /// - Throws: `.unreadableState` (exit 2) when the path is a FIFO, a device or a folder (never
    ///   opened); `.fileSystem` when it cannot be read.
    public func forEachLine(_ body: (Line) throws -> Bool) throws {
        _ = try HistoryFile.withOpened(path, for: .read) { file in
            var number = 0
            try file.forEachLine(limit: Self.maxLineBytes) { raw in
                number += 1
                return try body(Self.parse(raw, number: number))
            }
        }
    }

    /// Calls `body` with each line, newest first, until it returns false: only as much of the
    /// file is read as `body` goes back.
    public func forEachLineNewestFirst(_ body: (Line) throws -> Bool) throws {
        _ = try HistoryFile.withOpened(path, for: .read) { file in
            var number: Int?
            try file.forEachLineBackward(limit: Self.maxLineBytes) { raw in
                if number == nil {
                    number = raw.isTerminated ? try wholeLineCount(file, last: raw) : try tail(of: file).lines
                }
                defer { number? -= 1 }
                return try body(Self.parse(raw, number: number ?? 0))
            }
        }
    }

    /// The newest record for which `predicate` holds, reading from the end only as far as it must.
    ///
    /// - Parameter earliest: stop at the first record started before this: runs append in the
    ///   order they took the run lock, so no record of a run started since lies further back.
    public func lastRecord(
        startedOnOrAfter earliest: Date? = nil, where predicate: (ReleaseRecord) throws -> Bool = { _ in true }
    ) throws
        -> ReleaseRecord?
    {
        var found: ReleaseRecord?
        try forEachLineNewestFirst { line in
            guard let record = line.record else { return true }
            if let earliest, record.startedOn < earliest { return false }
            guard try predicate(record) else { return true }
            found = record
            return false
        }
        return found
    }

    /// Every line of the history; an absent file has none. All of it in memory: commands read it
    /// with `forEachLine` or `forEachLineNewestFirst` instead.
    public func lines() throws -> [Line] {
        var result: [Line] = []
        try forEachLine {
            result.append($0)
            return true
        }
        return result
    }

    /// The valid records, oldest first, all in memory (see `lines`).
    public func records() throws -> [ReleaseRecord] {
        try lines().compactMap(\.record)
    }

    /// The end of the file: its last whole line, a torn line after it, and how many whole lines
    /// there are.
    struct Tail {
        var lastWhole: HistoryFile.RawLine?
        var torn: HistoryFile.RawLine?
        var wholeLines: Int

        /// Where the last whole line ends: where an append writes.
        var end: Int64 { lastWhole?.end ?? 0 }
        var lines: Int { wholeLines + (torn == nil ? 0 : 1) }
    }

    func tail(of file: HistoryFile) throws -> Tail {
        var lastWhole: HistoryFile.RawLine?
        var torn: HistoryFile.RawLine?
        try file.forEachLineBackward(limit: Self.maxLineBytes) { raw in
            guard raw.isTerminated else {
                torn = raw
                return true
            }
            lastWhole = raw
            return false
        }
        return Tail(
            lastWhole: lastWhole, torn: torn, wholeLines: try lastWhole.map { try wholeLineCount(file, last: $0) } ?? 0)
    }

    /// The number of whole lines up to and including `last`: from the head file when it names
    /// exactly that line and where it ends, else counted.
    func wholeLineCount(_ file: HistoryFile, last: HistoryFile.RawLine) throws -> Int {
        if case .read(let head, _) = readHead(), head.bytes == last.end, head.lastSHA256 == last.sha256 {
            return head.lines
        }
        return try file.countNewlines(before: last.end)
    }

    // MARK: Is it a history?

    /// A line that shows the file is not a release history: its first or its last line is
    /// neither a record nor what a crash leaves of one (only those are read: a history damaged
    /// in the middle is still one, and `verify` names every bad line). nil when it is a history.
    ///
    /// - Throws: `.unreadableState` (exit 2) for a FIFO, a device or a folder.
    public func foreignLine() throws -> Line? {
        try HistoryFile.withOpened(path, for: .read) { file in try foreignLine(in: file, tail: try tail(of: file)) }
            ?? nil
    }

    func foreignLine(in file: HistoryFile, tail: Tail) throws -> Line? {
        if let first = try file.firstLine(limit: Self.maxLineBytes), case let line = Self.parse(first, number: 1),
            line.kind == .foreign
        {
            return line
        }
        if let torn = tail.torn, case let line = Self.parse(torn, number: tail.lines), line.kind == .foreign {
            return line
        }
        if let last = tail.lastWhole, case let line = Self.parse(last, number: tail.wholeLines), line.kind == .foreign {
            return line
        }
        return nil
    }

    /// Stops before any change when the file is not a release history: the one check of
    /// `validate`, `run --dry-run` and every command that appends.
    ///
    /// - Throws: `.unreadableState` (exit 2) naming the file and the line, or what the path is
    ///   when it is not a regular file.
    public func checkIsHistory() throws {
        guard let line = try foreignLine() else { return }
        throw Self.notAHistory(path, line)
    }

    static func notAHistory(_ path: String, _ line: Line) -> OrchestratorError {
        OrchestratorError(
            .unreadableState,
            "\(path):\(line.number): not a release record, so \(path) is not a release history; nothing was changed",
            hint: "point the pipeline's history: key at the release history or at a new file; "
                + "orchestrate history verify --history \(path) lists every line that is wrong")
    }

    /// The torn last line, if the file ends in one: what `status` and `verify` report and the
    /// next append repairs. Reads only the end of the file.
    public func tornTail() throws -> Line? {
        var torn: Line?
        try forEachLineNewestFirst { line in
            if line.kind == .tornTail { torn = line }
            return false
        }
        return torn
    }

    // MARK: Appending

    /// Appends a record, filling in `previousSHA256` from the last line and `signer` from the
    /// signing key; with a key, the line is a DSSE envelope around the record. A torn last line
    /// is kept aside, replaced by the record and named in its `historyRepair`.
    ///
    /// Reads the first and last lines and the head, not the whole file. The caller holds the run
    /// lock, so nothing else appends meanwhile.
    ///
    /// - Throws: `.unreadableState` when the file is not a release history (nothing is written);
    ///   `.diskFull` (exit 5) when the disk is full, the file then as it was.
    @discardableResult
    public func append(_ record: ReleaseRecord) throws -> ReleaseRecord {
        do {
            try AtomicFile.createFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        } catch let error as AtomicFileError {
            throw OrchestratorError.writing(error, what: "the history's folder")
        }
        let appended = try HistoryFile.withOpened(path, for: .write) { file in
            let tail = try tail(of: file)
            let (record, head) = try append(record, to: file, after: tail)
            do {
                try writeHead(head)
            } catch let error as AtomicFileError {
                // All or nothing: without its head the line would read as written by someone else.
                let original = tail.torn?.bytes ?? Data()
                let restored =
                    (try? AtomicFile.replaceTail(
                        of: file.descriptor, from: off_t(tail.end), with: original, original: Data(), path: path))
                    != nil
                if restored, let aside = record.historyRepair?.keptIn { unlink(aside) }
                throw OrchestratorError.writing(
                    error, what: "the history's head file",
                    unchanged: restored
                        ? "the record was not appended and the history is as it was"
                        : "the record is appended (line \(head.lines)) but the head file names the line before, which history verify reports until the next append"
                )
            }
            return record
        }
        guard let appended else { throw OrchestratorError(.fileSystem, "cannot open the history \(path)") }
        return appended
    }

    private func append(_ record: ReleaseRecord, to file: HistoryFile, after tail: Tail) throws -> (ReleaseRecord, Head)
    {
        if let foreign = try foreignLine(in: file, tail: tail) { throw Self.notAHistory(path, foreign) }
        var record = record
        var original = Data()
        if let torn = tail.torn {
            record.historyRepair = try keepAside(torn, line: tail.lines)
            original = torn.bytes
        }
        record.previousSHA256 = tail.lastWhole?.sha256
        record.signer = signingKey.map { .init(keyID: $0.publicKey.keyID, publicKey: $0.publicKey.base64) }
        let body: Data
        if let signingKey {
            body = try SignedEnvelope.signing(
                try record.jsonLine(), type: SignedEnvelope.releasePayloadType, with: signingKey
            ).jsonLine()
        } else {
            body = try record.jsonLine()
        }
        var line = body
        line.append(UInt8(ascii: "\n"))
        do {
            try AtomicFile.replaceTail(
                of: file.descriptor, from: off_t(tail.end), with: line, original: original, path: path)
        } catch let error as AtomicFileError {
            throw OrchestratorError.writing(
                error, what: "the history", unchanged: "the record was not appended and the history is as it was")
        }
        return (
            record, Head(lines: tail.wholeLines + 1, lastSHA256: sha256Hex(body), bytes: tail.end + Int64(line.count))
        )
    }

    /// Copies a torn last line to `<history>.torn-TIME` (durably) before it is replaced.
    private func keepAside(_ torn: HistoryFile.RawLine, line: Int) throws -> ReleaseRecord.HistoryRepair {
        guard torn.isWhole else {
            throw OrchestratorError(
                .unreadableState,
                "\(path):\(line): the last line is incomplete and \(torn.length) bytes long, more than any record: orchestrate did not write it; nothing was changed",
                hint: "move \(path) away (or cut that line off by hand) and run again")
        }
        let bytes = torn.bytes
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let aside = "\(path).torn-\(stamp)-\(torn.offset)"
        do {
            try AtomicFile.write(bytes, to: aside)
        } catch let error as AtomicFileError {
            throw OrchestratorError.writing(
                error, what: "a copy of the history's torn last line",
                unchanged: "nothing was appended and the history is as it was")
        }
        return .init(line: line, bytes: bytes.count, sha256: sha256Hex(bytes), keptIn: aside)
    }
}

extension ReleaseRecord {
    /// A torn last line of the history (a write cut short by a crash or a full disk) that the
    /// append of this record replaced, its bytes kept in `keptIn`.
    public struct HistoryRepair: Sendable, Codable, Equatable {
        /// The line number it had.
        public var line: Int
        public var bytes: Int
        public var sha256: String
        public var keptIn: String

        enum CodingKeys: String, CodingKey {
            case line, bytes, sha256
            case keptIn = "kept_in"
        }

        /// What was done, for people.
        public var summary: String {
            "the history's last line \(line) was torn (\(bytes) bytes with no newline): its bytes are kept in \(keptIn) and the record took its place"
        }
    }
}
