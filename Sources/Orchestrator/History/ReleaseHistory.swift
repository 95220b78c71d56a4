import DurableFiles
public import Foundation
import StrictYAML

/// The release history: one JSON record per line, each carrying the SHA-256 of the line before,
/// plus a small head file (`<history>.head`) naming the line count and last line's digest so
/// that removing records from the end is detected too.
///
/// Appends are atomic: one `write` of the whole line on an `O_APPEND` descriptor, then `fsync`.
/// A torn last line left by a crash is reported, and the next append starts on a fresh line so
/// that it never makes later records unreadable.
public struct ReleaseHistory: Sendable {
    public var path: String

    public init(path: String) {
        self.path = path
    }

    var headPath: String { path + ".head" }

    /// One line of the file as read back.
    public struct Line: Sendable {
        public var number: Int
        public var bytes: Data
        public var record: ReleaseRecord?
        /// Why the line is not a record: a torn write, or not our JSON.
        public var problem: String?
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
            var line = Line(number: index + 1, bytes: Data(part))
            do {
                line.record = try ReleaseRecord.decode(Data(part))
            } catch {
                line.problem =
                    isLast
                    ? "the last line is incomplete (a write torn by a crash)"
                    : "not a release record (a torn write or an edit)"
            }
            result.append(line)
        }
        return result
    }

    /// The valid records, oldest first.
    public func records() throws -> [ReleaseRecord] {
        try lines().compactMap(\.record)
    }

    /// Appends a record, filling in `previousSHA256` from the current last line.
    ///
    /// The caller holds the run lock, so nothing else appends meanwhile.
    @discardableResult
    public func append(_ record: ReleaseRecord) throws -> ReleaseRecord {
        var record = record
        let existing = try lines()
        record.previousSHA256 = existing.last.map { sha256Hex($0.bytes) }
        let body = try record.jsonLine()
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

    func readHead() -> Head? {
        guard let data = FileManager.default.contents(atPath: headPath) else { return nil }
        return try? JSONDecoder().decode(Head.self, from: data)
    }

    private func writeHead(_ head: Head) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            try AtomicFile.write(try encoder.encode(head), to: headPath)
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

    /// Checks every line parses, every record's `previous_sha256` matches the line before it, and
    /// the file still holds at least the lines the head file names, ending in the same line.
    public func verify() throws -> [Problem] {
        let all = try lines()
        var problems: [Problem] = []
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
        }
        if let head = readHead() {
            if all.count < head.lines {
                problems.append(Problem(line: 0, message: "the history was truncated: the head file records \(head.lines) lines, the file has \(all.count)"))
            } else if sha256Hex(all[head.lines - 1].bytes) != head.lastSHA256 {
                problems.append(Problem(line: head.lines, message: "differs from the line the head file recorded: it was edited"))
            }
        } else if !all.isEmpty {
            problems.append(Problem(line: 0, message: "the head file \(headPath) is missing"))
        }
        return problems
    }
}
