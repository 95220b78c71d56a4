import CZlib
import DurableFiles
import Foundation
import RecEngineContract

/// One line of a log source as a reader hands it on.
struct LogLine {
    /// The line without its newline; only its first `IngestLimits.keptBytesOfLongLine` bytes
    /// when it is over-long.
    var text: Substring
    /// The source key (file path, `-`, `TOPIC/PARTITION`) and where the line starts in it.
    var key: String
    var offset: Int64
    /// The line's length in bytes when it is longer than `IngestLimits.maximumLineBytes`.
    var overlongLength: Int64?

    /// A line from its bytes (a Kafka message): over-long ones keep only their head.
    init(bytes: UnsafeRawBufferPointer, key: String, offset: Int64) {
        let isOverlong = bytes.count > IngestLimits.maximumLineBytes
        let kept = isOverlong ? UnsafeRawBufferPointer(rebasing: bytes[..<IngestLimits.keptBytesOfLongLine]) : bytes
        self.init(
            text: String(decoding: kept, as: UTF8.self)[...], key: key, offset: offset,
            overlongLength: isOverlong ? Int64(bytes.count) : nil)
    }

    init(text: Substring, key: String, offset: Int64, overlongLength: Int64? = nil) {
        self.text = text
        self.key = key
        self.offset = offset
        self.overlongLength = overlongLength
    }
}

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
    /// `deadline`, handing each line to `handle`.
    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (LogLine) throws -> Void
    ) throws -> LogReadResult
}

/// Splits a byte stream into lines, tracking the stream offset of each line's start. A line
/// longer than `IngestLimits.maximumLineBytes` is handed out once its newline comes, with only
/// its head: memory stays bounded whatever the stream holds.
struct LineSplitter {
    let key: String
    /// The current line's bytes so far; only its head once it is over-long.
    private var pending: [UInt8] = []
    /// The current line's length so far, once it is longer than the bound.
    private var overlongLength: Int64?
    /// Offset of the current line's start: the end of the last line handed out.
    private(set) var consumed: Int64

    init(key: String, offset: Int64) {
        self.key = key
        consumed = offset
    }

    var hasPartialLine: Bool { !pending.isEmpty || overlongLength != nil }

    /// Hands out the complete lines in `chunk`; returns false when `accept` declined a line, with
    /// `consumed` at that line's start.
    mutating func feed(_ chunk: UnsafeRawBufferPointer, accept: (LogLine) throws -> Bool) rethrows -> Bool {
        guard let base = chunk.baseAddress else { return true }
        var start = 0
        while start < chunk.count {
            guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), chunk.count - start) else {
                append(UnsafeRawBufferPointer(rebasing: chunk[start...]))
                return true
            }
            let newline = base.distance(to: UnsafeRawPointer(found))
            append(UnsafeRawBufferPointer(rebasing: chunk[start..<newline]))
            guard try handOut(terminated: true, accept: accept) else { return false }
            start = newline + 1
        }
        return true
    }

    /// Feeds what `read` puts in a buffer (a count of bytes, 0 at the end, nil when nothing came
    /// before the deadline) until the end, `accept` declining a line, or `deadline`; returns
    /// whether the end was reached.
    mutating func pump(
        deadline: ContinuousClock.Instant, accept: (LogLine) throws -> Bool,
        read: (UnsafeMutableRawBufferPointer) throws -> Int?
    ) throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while ContinuousClock.now < deadline {
            guard let count = try buffer.withUnsafeMutableBytes(read) else { return false }
            if count == 0 { return true }
            guard
                try buffer.withUnsafeBytes({ try feed(UnsafeRawBufferPointer(rebasing: $0[..<count]), accept: accept) })
            else { return false }
        }
        return false
    }

    /// Hands out an unterminated last line (at the end of a finished stream).
    mutating func finish(accept: (LogLine) throws -> Bool) rethrows {
        guard hasPartialLine else { return }
        _ = try handOut(terminated: false, accept: accept)
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if let length = overlongLength {
            overlongLength = length + Int64(bytes.count)
        } else if pending.count + bytes.count > IngestLimits.maximumLineBytes {
            overlongLength = Int64(pending.count + bytes.count)
            let room = max(0, IngestLimits.keptBytesOfLongLine - pending.count)
            pending.append(contentsOf: bytes.prefix(room))
            pending.removeSubrange(min(pending.count, IngestLimits.keptBytesOfLongLine)...)
        } else {
            pending.append(contentsOf: bytes)
        }
    }

    private mutating func handOut(terminated: Bool, accept: (LogLine) throws -> Bool) rethrows -> Bool {
        let length = overlongLength ?? Int64(pending.count)
        var end = pending.count
        if overlongLength == nil, terminated, end > 0, pending[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = LogLine(
            text: String(decoding: pending[..<end], as: UTF8.self)[...], key: key, offset: consumed,
            overlongLength: overlongLength)
        guard try accept(line) else { return false }
        consumed += length + (terminated ? 1 : 0)
        pending.removeAll(keepingCapacity: pending.count <= 1 << 16)
        overlongLength = nil
        return true
    }
}

/// A log file, or a folder of them; `*.gz` files are gzip. Positions are byte offsets in the
/// (decompressed) text, so a file that grows is read on from where the last run stopped. Only
/// regular files are read: a FIFO or a device (which may never end) is refused.
struct FileLogReader: LogReader {
    var path: String

    /// The files to read, in name order: the path itself, or the visible regular files of a folder
    /// (folders in it are skipped).
    ///
    /// - Throws: `RecEngineError` `.fileSystem` when the path does not exist, `.invalidArgument`
    ///   when it, or a file in the folder, is not a regular file.
    func files() throws -> [String] {
        switch FileKind.of(path) {
        case .missing:
            throw RecEngineError(
                .fileSystem, "the log source cannot be read: \(String(cString: strerror(errno)))", location: path,
                hint: Self.sourceHint)
        case .directory:
            break
        case .regular:
            return [path]
        case .special(let kind):
            throw Self.notRegular(path, kind)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { !$0.hasPrefix(".") }.sorted()
        return try names.map { "\(path)/\($0)" }.filter { file in
            switch FileKind.of(file) {
            case .regular: return true
            case .directory, .missing: return false
            case .special(let kind): throw Self.notRegular(file, kind)
            }
        }
    }

    static let sourceHint =
        "give a log file, a folder of log files, - (standard input, read until --max-seconds) or kafka://HOST:PORT/TOPIC"

    static func notRegular(_ file: String, _ kind: String) -> RecEngineError {
        RecEngineError(
            .invalidArgument, "the log source is \(kind), not a regular file: it is not read (it may never end)",
            location: file,
            hint: "to read a stream, pipe it to --source - or use kafka://HOST:PORT/TOPIC; otherwise \(sourceHint)")
    }

    /// The permission bits shared by every file of the source (the strictest).
    func permissions() throws -> mode_t {
        var shared: mode_t = 0o7777
        for file in try files() {
            var info = stat()
            if stat(file, &info) == 0 { shared &= info.st_mode & 0o7777 }
        }
        return shared
    }

    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (LogLine) throws -> Void
    ) throws -> LogReadResult {
        var result = LogReadResult(positions: positions)
        var taken = 0
        for file in try files() {
            if limit > 0 && taken >= limit { break }
            if ContinuousClock.now >= deadline { break }
            let start = positions[file] ?? 0
            var splitter = LineSplitter(key: file, offset: start)
            func accept(_ line: LogLine) throws -> Bool {
                if limit > 0 && taken >= limit { return false }
                try handle(line)
                taken += 1
                return true
            }
            let descriptor = try Self.openRegular(file)
            if file.hasSuffix(".gz") {
                if let note = try readGzip(
                    file, descriptor, from: start, into: &splitter, deadline: deadline, accept: accept)
                {
                    result.notes.append(note)
                }
            } else {
                defer { close(descriptor) }
                try readPlain(file, descriptor, from: start, into: &splitter, deadline: deadline, accept: accept)
                if splitter.hasPartialLine && !(limit > 0 && taken >= limit) && ContinuousClock.now < deadline {
                    result.notes.append("\(file): its last line has no newline yet; it is read when complete")
                }
            }
            result.positions[file] = splitter.consumed
        }
        return result
    }

    /// Opens `file` without blocking (a FIFO put in its place since `files()` would block a plain
    /// open) and checks, on the open descriptor, that it is a regular file.
    static func openRegular(_ file: String) throws -> Int32 {
        let descriptor = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw RecEngineError(
                .fileSystem, "cannot open the log file: \(String(cString: strerror(errno)))", location: file)
        }
        let kind = FileKind.of(descriptor: descriptor)
        guard case .regular = kind else {
            close(descriptor)
            throw notRegular(file, kind.description)
        }
        return descriptor
    }

    private func readPlain(
        _ file: String, _ descriptor: Int32, from start: Int64, into splitter: inout LineSplitter,
        deadline: ContinuousClock.Instant,
        accept: (LogLine) throws -> Bool
    ) throws {
        let size = Int64(lseek(descriptor, 0, SEEK_END))
        if size < start {
            throw RecEngineError(
                .invalidArgument, "the file is shorter (\(size) bytes) than the committed position \(start)",
                location: file,
                hint: "it was truncated or replaced; run the ingest with mode historical to rebuild from the beginning")
        }
        lseek(descriptor, off_t(start), SEEK_SET)
        // An unterminated last line stays for the next run: the writer may be in the middle of it.
        _ = try splitter.pump(deadline: deadline, accept: accept) {
            try readDescriptor(descriptor, into: $0, location: file)
        }
    }

    /// Reads a gzip file from its open `descriptor` (which it closes). Returns a note when it
    /// stopped short: the file ends before its gzip stream does (a file still being written: its
    /// partial last line is left for the next run, like a plain file's), or the deadline came
    /// before the committed position was reached.
    ///
    /// - Throws: `.invalidArgument` when the data is damaged, or expands more than
    ///   `IngestLimits.maximumGzipRatio` times (a decompression bomb).
    private func readGzip(
        _ file: String, _ descriptor: Int32, from start: Int64, into splitter: inout LineSplitter,
        deadline: ContinuousClock.Instant,
        accept: (LogLine) throws -> Bool
    ) throws -> String? {
        guard let gz = gzdopen(descriptor, "rb") else {
            close(descriptor)
            throw RecEngineError(
                .fileSystem, "cannot open the gzip log file: \(String(cString: strerror(errno)))", location: file)
        }
        defer { gzclose(gz) }
        struct Damaged: Error { var message: String }
        func decompress(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
            let count = gzread(gz, buffer.baseAddress, UInt32(buffer.count))
            guard count >= 0 else {
                var code: Int32 = 0
                throw Damaged(message: String(cString: gzerror(gz, &code)))
            }
            let expanded = Int64(gztell(gz))
            let compressed = max(Int64(gzoffset(gz)), 1)
            if expanded > IngestLimits.gzipRatioAllowance && expanded > IngestLimits.maximumGzipRatio * compressed {
                throw RecEngineError(
                    .invalidArgument,
                    "the gzip file expands more than \(IngestLimits.maximumGzipRatio) times (\(expanded >> 20) MiB from \(compressed >> 10) KiB so far): a decompression bomb, or not a movie log",
                    location: file,
                    hint:
                        "nothing of this run was committed; remove the file from the source, or decompress it yourself and give the plain file"
                )
            }
            return Int(count)
        }
        let ended: Bool
        do {
            // The committed position is reached by reading up to it (what gzseek does), within
            // the deadline and the ratio bound.
            var skipped: Int64 = 0
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while skipped < start {
                guard ContinuousClock.now < deadline else {
                    return "\(file): the deadline came before the committed position; the next run goes on"
                }
                let count = try buffer.withUnsafeMutableBytes { whole in
                    try decompress(
                        into: UnsafeMutableRawBufferPointer(
                            rebasing: whole[..<Int(min(Int64(whole.count), start - skipped))]))
                }
                guard count > 0 else {
                    throw RecEngineError(
                        .invalidArgument, "the decompressed file is shorter than the committed position \(start)",
                        location: file,
                        hint: "it was replaced; run the ingest with mode historical to rebuild from the beginning")
                }
                skipped += Int64(count)
            }
            ended = try splitter.pump(deadline: deadline, accept: accept, read: decompress)
        } catch let damage as Damaged {
            throw RecEngineError(
                .invalidArgument, "the gzip data is damaged after offset \(splitter.consumed): \(damage.message)",
                location: file,
                hint: "nothing of this run was committed; repair or remove the file and run again")
        }
        guard ended else { return nil }
        var code: Int32 = 0
        gzerror(gz, &code)
        if code == Z_BUF_ERROR {
            return "\(file): the gzip stream is not finished (still being written?); the rest is read when it is"
        }
        // A finished gzip file: its last line counts even without a newline.
        try splitter.finish(accept: accept)
        return nil
    }
}

/// Standard input, read to its end or the deadline, whichever comes first: a pipe that stays
/// open without writing does not hold the run past its deadline. Positions count bytes but
/// cannot be resumed.
struct StandardInputLogReader: LogReader {
    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (LogLine) throws -> Void
    ) throws -> LogReadResult {
        var splitter = LineSplitter(key: "-", offset: 0)
        var taken = 0
        func accept(_ line: LogLine) throws -> Bool {
            if limit > 0 && taken >= limit { return false }
            try handle(line)
            taken += 1
            return true
        }
        let ended = try splitter.pump(deadline: deadline, accept: accept) { buffer in
            guard try waitForInput(STDIN_FILENO, until: deadline) else { return nil }
            return try readDescriptor(STDIN_FILENO, into: buffer, location: "-")
        }
        if ended { try splitter.finish(accept: accept) }
        var result = LogReadResult(positions: ["-": splitter.consumed])
        if !ended && ContinuousClock.now >= deadline {
            result.notes.append(
                "standard input was still open at the deadline (--max-seconds); what came before it was read")
        }
        return result
    }
}

/// Waits until `descriptor` has something to read (or its end), or `deadline` passes; returns
/// false at the deadline.
private func waitForInput(_ descriptor: Int32, until deadline: ContinuousClock.Instant) throws -> Bool {
    while true {
        let remaining = ContinuousClock.now.duration(to: deadline)
        guard remaining > .zero else { return false }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
        var request = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let ready = poll(&request, 1, min(milliseconds, 1000))
        if ready > 0 { return true }
        if ready < 0 && errno != EINTR {
            throw RecEngineError(
                .fileSystem, "cannot wait for input: \(String(cString: strerror(errno)))", location: "-")
        }
    }
}

/// `read(2)` into `buffer`, retried when a signal interrupts it; 0 at the end.
func readDescriptor(_ descriptor: Int32, into buffer: UnsafeMutableRawBufferPointer, location: String) throws -> Int {
    while true {
        let count = read(descriptor, buffer.baseAddress, buffer.count)
        if count >= 0 { return count }
        if errno != EINTR {
            throw RecEngineError(.fileSystem, "cannot read: \(String(cString: strerror(errno)))", location: location)
        }
    }
}
