import DurableFiles
public import Foundation
import StrictYAML

/// The release history: one JSON record per line, each carrying the SHA-256 of the line before,
/// plus a small head file (`<history>.head`) naming the line count and last line's digest so
/// that removing records from the end is detected too.
///
/// With a signing key, each line is a DSSE envelope around the record's JSON (which then names
/// its signer) and the head is one too: the chain link is inside what is signed, so editing,
/// inserting, removing or appending a line, or re-chaining the file, needs the private key.
/// Unsigned lines (written without a key, or by earlier versions) stay readable.
///
/// Appends are atomic: one `write` of the whole line on an `O_APPEND` descriptor, then `fsync`.
/// A torn last line left by a crash is reported, and the next append starts on a fresh line so
/// that it never makes later records unreadable. A file that is not a history is never appended to.
public struct ReleaseHistory: Sendable {
    public var path: String
    /// Signs every record this appends; nil: records are unsigned.
    public var signingKey: ReleaseSigningKey?

    public init(path: String, signingKey: ReleaseSigningKey? = nil) {
        self.path = path
        self.signingKey = signingKey
    }

    var headPath: String { path + ".head" }

    /// One line of the file as read back.
    public struct Line: Sendable {
        public var number: Int
        public var bytes: Data
        public var record: ReleaseRecord?
        /// The DSSE envelope the record came in; nil for an unsigned record.
        public var envelope: SignedEnvelope?
        /// Why the line is not a record: a torn write, or not our JSON.
        public var problem: String?

        /// Whether the line can be what a crash leaves of an append: the start of a JSON object
        /// that never ended. Anything else that is not a record means the file is not a history.
        var isTornRecord: Bool {
            bytes.first == UInt8(ascii: "{") && (try? JSONSerialization.jsonObject(with: bytes)) == nil
        }
    }

    public struct Head: Sendable, Codable, Equatable {
        public var lines: Int
        public var lastSHA256: String

        enum CodingKeys: String, CodingKey {
            case lines
            case lastSHA256 = "last_sha256"
        }
    }

    /// Every line of the history; an absent file has none.
    public func lines() throws -> [Line] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw OrchestratorError(.fileSystem, "cannot read the history \(path): \(error.localizedDescription)")
        }
        var result: [Line] = []
        let parts = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() {
            let isLast = index == parts.count - 1
            if isLast && part.isEmpty { break }
            result.append(Self.parse(Data(part), number: index + 1, isLast: isLast))
        }
        return result
    }

    static func parse(_ bytes: Data, number: Int, isLast: Bool) -> Line {
        var line = Line(number: number, bytes: bytes)
        if let envelope = SignedEnvelope.decode(bytes) {
            line.envelope = envelope
            if envelope.payloadType != SignedEnvelope.releasePayloadType {
                line.problem = "a signed envelope of type \(envelope.payloadType), not a release record"
            } else if let record = try? ReleaseRecord.decode(envelope.payload) {
                line.record = record
            } else {
                line.problem = "the signed payload is not a release record"
            }
        } else if let record = try? ReleaseRecord.decode(bytes) {
            line.record = record
        } else {
            line.problem =
                isLast
                ? "the last line is incomplete (a write torn by a crash)"
                : "not a release record (a torn write or an edit)"
        }
        return line
    }

    /// The valid records, oldest first.
    public func records() throws -> [ReleaseRecord] {
        try lines().compactMap(\.record)
    }

    /// The first line that is neither a record nor what a crash leaves of one: the file is then
    /// not a release history (the pipeline's `history:` names some other file). nil when it is one.
    public func firstForeignLine() throws -> Line? {
        Self.firstForeignLine(in: try lines())
    }

    static func firstForeignLine(in lines: [Line]) -> Line? {
        lines.first { $0.problem != nil && !$0.isTornRecord }
    }

    /// Stops before any change when the file is not a release history.
    ///
    /// - Throws: `.unreadableState` (exit 2) naming the file and the line.
    public func checkIsHistory() throws {
        guard let line = try firstForeignLine() else { return }
        throw Self.notAHistory(path, line)
    }

    static func notAHistory(_ path: String, _ line: Line) -> OrchestratorError {
        OrchestratorError(
            .unreadableState,
            "\(path):\(line.number): not a release record, so \(path) is not a release history; nothing was changed",
            hint: "point the pipeline's history: key at the release history or at a new file; "
                + "orchestrate history verify --history \(path) lists every line that is wrong")
    }

    /// Appends a record, filling in `previousSHA256` from the current last line and `signer`
    /// from the signing key; with a key, the line is a DSSE envelope around the record.
    ///
    /// The caller holds the run lock, so nothing else appends meanwhile.
    ///
    /// - Throws: `.unreadableState` when the file is not a release history (nothing is written).
    @discardableResult
    public func append(_ record: ReleaseRecord) throws -> ReleaseRecord {
        var record = record
        let existing = try lines()
        if let foreign = Self.firstForeignLine(in: existing) {
            throw Self.notAHistory(path, foreign)
        }
        record.previousSHA256 = existing.last.map { sha256Hex($0.bytes) }
        record.signer = signingKey.map { .init(keyID: $0.publicKey.keyID, publicKey: $0.publicKey.base64) }
        let body: Data
        if let signingKey {
            body = try SignedEnvelope.signing(try record.jsonLine(), type: SignedEnvelope.releasePayloadType, with: signingKey).jsonLine()
        } else {
            body = try record.jsonLine()
        }
        var line = Data()
        if !existing.isEmpty, try endsWithoutNewline() {
            // A torn line from a crash: end it so our record starts on a line of its own.
            line.append(UInt8(ascii: "\n"))
        }
        line.append(body)
        line.append(UInt8(ascii: "\n"))
        try AtomicFile.createFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OrchestratorError(.fileSystem, "cannot open the history \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = line.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        guard written == line.count else {
            throw OrchestratorError(.fileSystem, "could not append to the history \(path): \(String(cString: strerror(errno)))")
        }
        guard fsync(descriptor) == 0 else {
            throw OrchestratorError(.fileSystem, "could not flush the history \(path): \(String(cString: strerror(errno)))")
        }
        let head = Head(lines: existing.count + 1, lastSHA256: sha256Hex(body))
        try writeHead(head)
        return record
    }

    /// The head file as read back.
    enum HeadFile {
        case absent
        /// It exists but names no usable line count and digest.
        case unparseable(String)
        case read(Head, envelope: SignedEnvelope?)
    }

    func readHead() -> HeadFile {
        guard let data = FileManager.default.contents(atPath: headPath) else { return .absent }
        var bytes = data
        let envelope = SignedEnvelope.decode(data)
        if let envelope {
            guard envelope.payloadType == SignedEnvelope.headPayloadType else {
                return .unparseable("a signed envelope of type \(envelope.payloadType), not a head")
            }
            bytes = envelope.payload
        }
        let head: Head
        do {
            head = try JSONDecoder().decode(Head.self, from: bytes)
        } catch {
            return .unparseable("not {\"lines\": N, \"last_sha256\": HEX} (\(Self.decodingSummary(error)))")
        }
        guard head.lines >= 1 else { return .unparseable("lines is \(head.lines); a head names at least 1 line") }
        guard head.lastSHA256.count == 64, head.lastSHA256.allSatisfy(\.isHexDigit) else {
            return .unparseable("last_sha256 is not 64 hex digits")
        }
        return .read(head, envelope: envelope)
    }

    private static func decodingSummary(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "\(key.stringValue) is missing"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        case DecodingError.dataCorrupted(let context): context.debugDescription
        default: "\(error)"
        }
    }

    private func writeHead(_ head: Head) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            var bytes = try encoder.encode(head)
            if let signingKey {
                bytes = try SignedEnvelope.signing(bytes, type: SignedEnvelope.headPayloadType, with: signingKey).jsonLine()
            }
            try AtomicFile.write(bytes, to: headPath)
        } catch let error as AtomicFileError {
            throw OrchestratorError(.fileSystem, "cannot update the history's head: \(error)")
        }
    }

    private func endsWithoutNewline() throws -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let end = try handle.seekToEnd()
        guard end > 0 else { return false }
        try handle.seek(toOffset: end - 1)
        return try handle.read(upToCount: 1) != Data([UInt8(ascii: "\n")])
    }

    /// A problem `verify` found.
    public struct Problem: Sendable, Codable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String

        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// What `verify` found: the problems, and who signed what.
    public struct Verification: Sendable, Codable, Equatable {
        public var records: Int
        public var problems: [Problem]
        /// The key id signatures were checked against; nil: they were not checked.
        public var trustedKeyID: String?
        /// The key ids that signed records, with how many records each (first seen first).
        public var signers: [SignerCount]
        /// Records with no signature.
        public var unsigned: Int

        public struct SignerCount: Sendable, Codable, Equatable {
            public var keyid: String
            public var records: Int

            public init(keyid: String, records: Int) {
                self.keyid = keyid
                self.records = records
            }
        }

        enum CodingKeys: String, CodingKey {
            case records, problems, signers, unsigned
            case trustedKeyID = "trusted_keyid"
        }
    }

    /// Checks every line: it parses, its `previous_sha256` matches the line before it, the head
    /// file names the last line exactly; with `trustedKey`, every signed line carries a valid
    /// signature by that key, no unsigned line follows a signed one, some line is signed, and
    /// the head is signed too when the last line is.
    ///
    /// Unsigned lines before the first signed one were written before signing was turned on: they
    /// are counted, not reported. Truncating the file back to an earlier state together with that
    /// state's own head file cannot be told from the file alone: keep the head file of each run
    /// elsewhere (CI artifacts) to detect that.
    public func verification(trustedKey: ReleasePublicKey? = nil) throws -> Verification {
        let all = try lines()
        var problems: [Problem] = []
        var signers: [Verification.SignerCount] = []
        var unsigned = 0
        var signedByTrustedKey = 0
        var lastSigned: Int?
        for (index, line) in all.enumerated() {
            if let problem = line.problem {
                problems.append(Problem(line: line.number, message: problem))
                continue
            }
            let expected = index == 0 ? nil : sha256Hex(all[index - 1].bytes)
            if line.record?.previousSHA256 != expected {
                problems.append(
                    Problem(
                        line: line.number,
                        message: index == 0
                            ? "the first record names a previous line: records before it were removed"
                            : "previous_sha256 does not match line \(index): a line before it was edited, inserted or removed"))
            }
            guard let envelope = line.envelope else {
                unsigned += 1
                if trustedKey != nil, let lastSigned {
                    problems.append(
                        Problem(
                            line: line.number,
                            message: "unsigned, after the signed line \(lastSigned): written without the signing key (appended or replaced by hand)"))
                }
                continue
            }
            lastSigned = line.number
            for keyid in Set(envelope.signatures.map(\.keyid)).sorted() {
                if let position = signers.firstIndex(where: { $0.keyid == keyid }) {
                    signers[position].records += 1
                } else {
                    signers.append(.init(keyid: keyid, records: 1))
                }
            }
            if let trustedKey {
                switch envelope.check(with: trustedKey) {
                case .valid:
                    signedByTrustedKey += 1
                    if let signer = line.record?.signer, signer.keyID != trustedKey.keyID {
                        problems.append(Problem(line: line.number, message: "names signer \(signer.keyID) but is signed by \(trustedKey.keyID)"))
                    }
                case .signedByOthers(let keyids):
                    let others = keyids.isEmpty ? "no key" : "key \(keyids.joined(separator: ", "))"
                    problems.append(Problem(line: line.number, message: "signed by \(others), not by the trusted key \(trustedKey.keyID)"))
                case .invalid:
                    problems.append(
                        Problem(line: line.number, message: "the signature by \(trustedKey.keyID) does not match the line: it was edited after signing"))
                }
            }
        }
        if let trustedKey, !all.isEmpty, signedByTrustedKey == 0 {
            let found = signers.isEmpty ? "no line is signed" : "lines are signed by \(signers.map(\.keyid).joined(separator: ", "))"
            problems.append(Problem(line: 0, message: "no record is signed by the trusted key \(trustedKey.keyID) (\(found))"))
        }
        problems += headProblems(all, trustedKey: trustedKey)
        return Verification(
            records: all.filter { $0.record != nil }.count, problems: problems, trustedKeyID: trustedKey?.keyID, signers: signers, unsigned: unsigned)
    }

    /// The problems `verification` finds without a trusted key: the chain and the head.
    public func verify() throws -> [Problem] {
        try verification().problems
    }

    /// The head must name the last line: fewer lines than it records means records were removed
    /// from the end, more means lines were appended by something other than `orchestrate` (or a
    /// crash came between the append and the head's update; the next append covers the line).
    private func headProblems(_ all: [Line], trustedKey: ReleasePublicKey?) -> [Problem] {
        switch readHead() {
        case .absent:
            return all.isEmpty ? [] : [Problem(line: 0, message: "the head file \(headPath) is missing")]
        case .unparseable(let reason):
            return [Problem(line: 0, message: "unparseable head \(headPath): \(reason)")]
        case .read(let head, let envelope):
            var problems: [Problem] = []
            if all.count < head.lines {
                problems.append(Problem(line: 0, message: "the history was truncated: the head file records \(head.lines) lines, the file has \(all.count)"))
            } else {
                if sha256Hex(all[head.lines - 1].bytes) != head.lastSHA256 {
                    problems.append(Problem(line: head.lines, message: "differs from the line the head file recorded: it was edited"))
                }
                for line in all.dropFirst(head.lines) {
                    problems.append(
                        Problem(
                            line: line.number,
                            message: "beyond the \(head.lines) lines the head file records: appended by something other than orchestrate "
                                + "(or orchestrate stopped before updating the head)"))
                }
            }
            if let trustedKey, all.last?.envelope != nil {
                switch envelope?.check(with: trustedKey) {
                case .valid?: break
                case nil:
                    problems.append(Problem(line: 0, message: "the head file \(headPath) is not signed, but the last line is: it was rewritten"))
                case .signedByOthers?, .invalid?:
                    problems.append(
                        Problem(line: 0, message: "the head file \(headPath) is not validly signed by the trusted key \(trustedKey.keyID): it was rewritten"))
                }
            }
            return problems
        }
    }
}
