import DurableFiles
import Foundation

extension ReleaseHistory {
    /// What the head file holds: the number of lines, the length of the file up to the last one,
    /// and that line's digest.
    public struct Head: Sendable, Codable, Equatable {
        public var lines: Int
        public var lastSHA256: String
        /// The file's length through the last line and its newline; nil in heads of earlier
        /// versions. With it, an append knows the line count without counting.
        public var bytes: Int64?

        public init(lines: Int, lastSHA256: String, bytes: Int64? = nil) {
            self.lines = lines
            self.lastSHA256 = lastSHA256
            self.bytes = bytes
        }

        enum CodingKeys: String, CodingKey {
            case lines, bytes
            case lastSHA256 = "last_sha256"
        }
    }

    /// The largest head file read: a head is under a kilobyte, signed.
    static let maxHeadBytes = 64 << 10

    /// The head file as read back.
    enum HeadFile {
        case absent
        /// It exists but names no usable line count and digest.
        case unparseable(String)
        case read(Head, envelope: SignedEnvelope?)
    }

    func readHead() -> HeadFile {
        let data: Data
        do {
            guard let contents = try AtomicFile.read(headPath, limit: Self.maxHeadBytes) else { return .absent }
            data = contents
        } catch let error as AtomicFileError {
            return .unparseable("\(error.step) failed: \(String(cString: strerror(error.code)))")
        } catch {
            return .unparseable("\(error)")
        }
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

    /// - Throws: `AtomicFileError` when it cannot be written (the previous head is then unchanged).
    func writeHead(_ head: Head) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = try encoder.encode(head)
        if let signingKey {
            bytes = try SignedEnvelope.signing(bytes, type: SignedEnvelope.headPayloadType, with: signingKey).jsonLine()
        }
        try AtomicFile.write(bytes, to: headPath)
    }

    /// A problem `verify` found.
    public struct Problem: Sendable, Codable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String

        public var description: String { line > 0 ? "line \(line): \(message)" : message }
    }

    /// The problems `verify` lists; past this, they are only counted.
    public static let maxListedProblems = 1_000

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

    /// Problems as they are found, the first `maxListedProblems` kept and the rest counted.
    private struct ProblemList {
        var kept: [Problem] = []
        var omitted = 0

        mutating func append(_ problem: Problem) {
            if kept.count < ReleaseHistory.maxListedProblems { kept.append(problem) } else { omitted += 1 }
        }

        var all: [Problem] {
            omitted == 0 ? kept : kept + [Problem(line: 0, message: "… and \(omitted) more problem(s), not listed")]
        }
    }

    /// Checks every line, reading the file once, a line at a time: it parses, its
    /// `previous_sha256` matches the line before it, the head file names the last line exactly;
    /// with `trustedKey`, every signed line carries a valid signature by that key, no unsigned
    /// line follows a signed one, some line is signed, and the head is signed too when the last
    /// line is.
    ///
    /// Unsigned lines before the first signed one were written before signing was turned on: they
    /// are counted, not reported. Truncating the file back to an earlier state together with that
    /// state's own head file cannot be told from the file alone: keep the head file of each run
    /// elsewhere (CI artifacts) to detect that.
    public func verification(trustedKey: ReleasePublicKey? = nil) throws -> Verification {
        let head = readHead()
        var problems = ProblemList()
        var beyondHead = ProblemList()
        var signers: [Verification.SignerCount] = []
        var unsigned = 0
        var records = 0
        var signedByTrustedKey = 0
        var lastSigned: Int?
        var lines = 0
        var previousSHA256: String?
        var headLineSHA256: String?
        var lastLineIsSigned = false
        try forEachLine { line in
            lines = line.number
            let sha256 = line.sha256
            defer { previousSHA256 = sha256 }
            lastLineIsSigned = line.envelope != nil
            if case .read(let head, _) = head {
                if line.number == head.lines { headLineSHA256 = sha256 }
                if line.number > head.lines && line.kind != .tornTail {
                    beyondHead.append(
                        Problem(
                            line: line.number,
                            message:
                                "beyond the \(head.lines) lines the head file records: appended by something other than orchestrate "
                                + "(or orchestrate stopped before updating the head)"))
                }
            }
            if let problem = line.problem {
                problems.append(Problem(line: line.number, message: problem))
                return true
            }
            records += 1
            if line.record?.previousSHA256 != previousSHA256 {
                problems.append(
                    Problem(
                        line: line.number,
                        message: line.number == 1
                            ? "the first record names a previous line: records before it were removed"
                            : "previous_sha256 does not match line \(line.number - 1): a line before it was edited, inserted or removed"
                    ))
            }
            guard let envelope = line.envelope else {
                unsigned += 1
                if trustedKey != nil, let lastSigned {
                    problems.append(
                        Problem(
                            line: line.number,
                            message:
                                "unsigned, after the signed line \(lastSigned): written without the signing key (appended or replaced by hand)"
                        ))
                }
                return true
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
                        problems.append(
                            Problem(
                                line: line.number,
                                message: "names signer \(signer.keyID) but is signed by \(trustedKey.keyID)"))
                    }
                case .signedByOthers(let keyids):
                    let others = keyids.isEmpty ? "no key" : "key \(keyids.joined(separator: ", "))"
                    problems.append(
                        Problem(
                            line: line.number,
                            message: "signed by \(others), not by the trusted key \(trustedKey.keyID)"))
                case .invalid:
                    problems.append(
                        Problem(
                            line: line.number,
                            message:
                                "the signature by \(trustedKey.keyID) does not match the line: it was edited after signing"
                        ))
                }
            }
            return true
        }
        if let trustedKey, lines > 0, signedByTrustedKey == 0 {
            let found =
                signers.isEmpty
                ? "no line is signed" : "lines are signed by \(signers.map(\.keyid).joined(separator: ", "))"
            problems.append(
                Problem(line: 0, message: "no record is signed by the trusted key \(trustedKey.keyID) (\(found))"))
        }
        switch head {
        case .absent:
            if lines > 0 { problems.append(Problem(line: 0, message: "the head file \(headPath) is missing")) }
        case .unparseable(let reason):
            problems.append(Problem(line: 0, message: "unparseable head \(headPath): \(reason)"))
        case .read(let head, let envelope):
            if lines < head.lines {
                problems.append(
                    Problem(
                        line: 0,
                        message:
                            "the history was truncated: the head file records \(head.lines) lines, the file has \(lines)"
                    ))
            } else if headLineSHA256 != head.lastSHA256 {
                problems.append(
                    Problem(line: head.lines, message: "differs from the line the head file recorded: it was edited"))
            }
            beyondHead.kept.forEach { problems.append($0) }
            problems.omitted += beyondHead.omitted
            if let trustedKey, lastLineIsSigned {
                switch envelope?.check(with: trustedKey) {
                case .valid?: break
                case nil:
                    problems.append(
                        Problem(
                            line: 0,
                            message: "the head file \(headPath) is not signed, but the last line is: it was rewritten"))
                case .signedByOthers?, .invalid?:
                    problems.append(
                        Problem(
                            line: 0,
                            message:
                                "the head file \(headPath) is not validly signed by the trusted key \(trustedKey.keyID): it was rewritten"
                        ))
                }
            }
        }
        return Verification(
            records: records, problems: problems.all, trustedKeyID: trustedKey?.keyID, signers: signers,
            unsigned: unsigned)
    }

    /// The problems `verification` finds without a trusted key: the chain and the head.
    public func verify() throws -> [Problem] {
        try verification().problems
    }
}
