import CZlib
import Foundation

/// What a read stopped at: the position reached per source key (file path, `-`, or
/// `kafka:TOPIC/PARTITION`), and why it stopped early when it did.
struct LogReadResult {
    var positions: [String: Int64]
    /// Set when the source failed part way (a broker gone): what was read before stays valid.
    var interruption: String?
    /// Things a person should know (an unfinished last line left for the next run).
    var notes: [String] = []
}

/// A source of log lines that can go on from a committed position.
protocol LogReader {
    /// Reads the lines after `positions` until the source's end, `limit` lines (0: no bound) or
    /// `deadline`, handing each line to `handle` with its source key and offset.
    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (Substring, String, Int64) -> Void
    ) throws -> LogReadResult
}

/// Splits a byte stream into lines, tracking the stream offset of each line's start.
struct LineSplitter {
    private var pending: [UInt8] = []
    /// Offset of `pending`'s first byte, which is the end of the last line handed out.
    private(set) var consumed: Int64

    init(offset: Int64) {
        consumed = offset
    }

    var hasPartialLine: Bool { !pending.isEmpty }

    /// Hands out the complete lines in `chunk`; returns false when `accept` asked to stop, with
    /// `consumed` at the end of the last line it took.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, accept: (Substring, Int64) -> Bool) -> Bool {
        pending.append(contentsOf: chunk)
        var start = 0
        var keepGoing = true
        while keepGoing, let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            var end = newline
            if end > start, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            let text = String(decoding: pending[start..<end], as: UTF8.self)
            keepGoing = accept(text[...], consumed)
            consumed += Int64(newline + 1 - start)
            start = newline + 1
        }
        pending.removeFirst(start)
        return keepGoing
    }

    /// Feeds what `read` puts in a buffer (a count of bytes, 0 at the end) until the end, `accept`
    /// declining a line, or `deadline`; returns whether the end was reached.
    mutating func pump(
        deadline: ContinuousClock.Instant, accept: (Substring, Int64) -> Bool, read: (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while ContinuousClock.now < deadline {
            let count = try buffer.withUnsafeMutableBytes(read)
            if count == 0 { return true }
            guard buffer.withUnsafeBytes({ feed(UnsafeRawBufferPointer(rebasing: $0[..<count]), accept: accept) }) else { return false }
        }
        return false
    }

    /// Hands out an unterminated last line (at the end of a finished stream).
    mutating func finish(accept: (Substring, Int64) -> Bool) {
        guard !pending.isEmpty else { return }
        let text = String(decoding: pending, as: UTF8.self)
        _ = accept(text[...], consumed)
        consumed += Int64(pending.count)
        pending.removeAll()
    }
}

/// A log file, or a folder of them; `*.gz` files are gzip. Positions are byte offsets in the
/// (decompressed) text, so a file that grows is read on from where the last run stopped.
struct FileLogReader: LogReader {
    var path: String

    /// The files to read, in name order: the path itself, or the visible regular files of a folder.
    func files() throws -> [String] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
            throw RecEngineError(.fileSystem, "the log source does not exist", location: path, hint: "give a log file, a folder of log files, - or kafka://HOST:PORT/TOPIC")
        }
        guard isFolder.boolValue else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        return names.map { "\(path)/\($0)" }.filter { file in
            var folder: ObjCBool = false
            return FileManager.default.fileExists(atPath: file, isDirectory: &folder) && !folder.boolValue
        }
    }

    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (Substring, String, Int64) -> Void
    ) throws -> LogReadResult {
        var result = LogReadResult(positions: positions)
        var taken = 0
        for file in try files() {
            if limit > 0 && taken >= limit { break }
            if ContinuousClock.now >= deadline { break }
            let start = positions[file] ?? 0
            var splitter = LineSplitter(offset: start)
            func accept(_ line: Substring, _ offset: Int64) -> Bool {
                if limit > 0 && taken >= limit { return false }
                handle(line, file, offset)
                taken += 1
                return true
            }
            if file.hasSuffix(".gz") {
                let complete = try readGzip(file, from: start, into: &splitter, deadline: deadline, accept: accept)
                if !complete {
                    result.notes.append("\(file): the gzip stream is not finished (still being written?); the rest is read when it is")
                }
            } else {
                try readPlain(file, from: start, into: &splitter, deadline: deadline, accept: accept)
                if splitter.hasPartialLine && !(limit > 0 && taken >= limit) {
                    result.notes.append("\(file): its last line has no newline yet; it is read when complete")
                }
            }
            result.positions[file] = splitter.consumed
        }
        return result
    }

    private func readPlain(
        _ file: String, from start: Int64, into splitter: inout LineSplitter, deadline: ContinuousClock.Instant,
        accept: (Substring, Int64) -> Bool
    ) throws {
        let descriptor = open(file, O_RDONLY)
        guard descriptor >= 0 else {
            throw RecEngineError(.fileSystem, "cannot open the log file: \(String(cString: strerror(errno)))", location: file)
        }
        defer { close(descriptor) }
        let size = Int64(lseek(descriptor, 0, SEEK_END))
        if size < start {
            throw RecEngineError(
                .invalidArgument, "the file is shorter (\(size) bytes) than the committed position \(start)", location: file,
                hint: "it was truncated or replaced; run the ingest with mode historical to rebuild from the beginning")
        }
        lseek(descriptor, off_t(start), SEEK_SET)
        // An unterminated last line stays for the next run: the writer may be in the middle of it.
        _ = try splitter.pump(deadline: deadline, accept: accept) { try readDescriptor(descriptor, into: $0, location: file) }
    }

    /// Returns false when the file ends before its gzip stream does (a file still being written):
    /// its partial last line is left for the next run, like a plain file's.
    private func readGzip(
        _ file: String, from start: Int64, into splitter: inout LineSplitter, deadline: ContinuousClock.Instant,
        accept: (Substring, Int64) -> Bool
    ) throws -> Bool {
        guard let gz = gzopen(file, "rb") else {
            throw RecEngineError(.fileSystem, "cannot open the gzip log file: \(String(cString: strerror(errno)))", location: file)
        }
        defer { gzclose(gz) }
        if start > 0 && Int64(gzseek(gz, numericCast(start), SEEK_SET)) != start {
            throw RecEngineError(
                .invalidArgument, "the decompressed file is shorter than the committed position \(start)", location: file,
                hint: "it was replaced; run the ingest with mode historical to rebuild from the beginning")
        }
        struct Damaged: Error { var message: String }
        let ended: Bool
        do {
            ended = try splitter.pump(deadline: deadline, accept: accept) { buffer in
                let count = gzread(gz, buffer.baseAddress, UInt32(buffer.count))
                guard count >= 0 else {
                    var code: Int32 = 0
                    throw Damaged(message: String(cString: gzerror(gz, &code)))
                }
                return Int(count)
            }
        } catch let damage as Damaged {
            throw RecEngineError(
                .invalidArgument, "the gzip data is damaged after offset \(splitter.consumed): \(damage.message)", location: file,
                hint: "nothing of this run was committed; repair or remove the file and run again")
        }
        guard ended else { return true }
        var code: Int32 = 0
        gzerror(gz, &code)
        if code == Z_BUF_ERROR { return false }
        // A finished gzip file: its last line counts even without a newline.
        splitter.finish(accept: accept)
        return true
    }
}

/// Standard input, read to its end (positions count bytes but cannot be resumed).
struct StandardInputLogReader: LogReader {
    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (Substring, String, Int64) -> Void
    ) throws -> LogReadResult {
        var splitter = LineSplitter(offset: 0)
        var taken = 0
        func accept(_ line: Substring, _ offset: Int64) -> Bool {
            if limit > 0 && taken >= limit { return false }
            handle(line, "-", offset)
            taken += 1
            return true
        }
        let ended = try splitter.pump(deadline: deadline, accept: accept) { try readDescriptor(STDIN_FILENO, into: $0, location: "-") }
        if ended { splitter.finish(accept: accept) }
        return LogReadResult(positions: ["-": splitter.consumed])
    }
}

/// `read(2)` into `buffer`, retried when a signal interrupts it; 0 at the end.
private func readDescriptor(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, location: String) throws -> Int {
    while true {
        let count = read(descriptor, buffer.baseAddress, buffer.count)
        if count >= 0 { return count }
        if errno != EINTR {
            throw RecEngineError(.fileSystem, "cannot read: \(String(cString: strerror(errno)))", location: location)
        }
    }
}
