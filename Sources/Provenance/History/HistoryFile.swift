import Crypto
import DurableFiles
import Foundation
import OrchestratorSupport
import RecEngineContract

/// The history file, open, read through a buffer of fixed size whatever the file's size: forward
/// from the start, or backward from the end so that what wants the newest records reads only
/// them. A line longer than the limit is never held: its first bytes, its length and its digest
/// are all that is kept of it. Only a regular file is opened, without ever blocking: a FIFO waits
/// for a writer, `/dev/zero` never ends.
struct HistoryFile {
    let path: String
    let descriptor: Int32
    /// Its length when opened.
    let size: Int64

    /// The bytes read at once.
    static let chunkBytes = 1 << 20
    /// What is kept of a line longer than the limit: enough to tell what it is.
    static let overlongPrefixBytes = 256

    /// One line as read.
    struct RawLine {
        /// Where it starts in the file.
        var offset: Int64
        /// Its length, without the newline.
        var length: Int
        /// Its bytes without the newline; only the first `overlongPrefixBytes` of a line longer than the limit.
        var bytes: Data
        /// Whether a newline ends it: only the last line of a file can lack one (a torn write).
        var isTerminated: Bool
        /// Whether `bytes` is all of it.
        var isWhole: Bool
        /// The SHA-256 of a line longer than the limit, computed as it went by (nil from `firstLine`).
        var overlongSHA256: String?

        /// The SHA-256 of its bytes, without the newline: what the next record's chain link names.
        var sha256: String? { isWhole ? sha256Hex(bytes) : overlongSHA256 }
        /// The offset just after it and its newline.
        var end: Int64 { offset + Int64(length) + (isTerminated ? 1 : 0) }
    }

    enum Access {
        case read
        /// Read and write; created when missing.
        case write
    }

    /// Runs `body` with the file open; nil, without calling it, when the file does not exist and
    /// `access` is `.read`.
    ///
    /// - Throws: `.unreadableState` (exit 2) for a FIFO, a device, a socket or a folder, which are
    ///   never opened; `.fileSystem` or `.diskFull` when it cannot be opened.
    static func withOpened<T>(_ path: String, for access: Access, _ body: (HistoryFile) throws -> T) throws -> T? {
        switch FileKind.of(path) {
        case .missing where access == .read: return nil
        case .missing, .regular: break
        case let kind: throw notAFile(path, kind: kind.description)
        }
        // Non-blocking, then checked on the open file: a path swapped for a FIFO after `FileKind`
        // looked is refused, not waited on.
        let flags = (access == .read ? O_RDONLY : O_RDWR | O_CREAT) | O_NONBLOCK | O_CLOEXEC
        let descriptor = open(path, flags, 0o644)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT && access == .read { return nil }
            if code == ENOSPC || code == EDQUOT {
                throw OrchestratorError.diskFull(path: path, doing: "creating the history", code: code)
            }
            throw OrchestratorError(
                .fileSystem, "cannot open the history \(path): \(String(cString: strerror(code)))",
                hint: "check that it and its folder are readable\(access == .write ? " and writable" : "") by this user"
            )
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            throw OrchestratorError(.fileSystem, "cannot read the history \(path): \(String(cString: strerror(errno)))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw notAFile(path, kind: "not a regular file") }
        return try body(HistoryFile(path: path, descriptor: descriptor, size: Int64(info.st_size)))
    }

    static func notAFile(_ path: String, kind: String) -> OrchestratorError {
        OrchestratorError(
            .unreadableState, "\(path) is \(kind), not a release history: nothing was read or changed",
            hint: "history: (or --history) names a regular file, or one that does not exist yet")
    }

    // MARK: Reading forward

    /// Calls `body` with each line, in order, until it returns false.
    ///
    /// - Parameter limit: the longest line held whole.
    func forEachLine(limit: Int, _ body: (RawLine) throws -> Bool) throws {
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytes)
        var position: Int64 = 0
        var line = LineInProgress(offset: 0, limit: limit)
        while position < size {
            let count = Int(min(Int64(buffer.count), size - position))
            try read(into: &buffer, at: position, count: count)
            var keepGoing = true
            try buffer.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var index = 0
                while index < count {
                    guard let found = memchr(base + index, Int32(UInt8(ascii: "\n")), count - index) else {
                        line.add(UnsafeRawBufferPointer(start: base + index, count: count - index))
                        return
                    }
                    let newline = base.distance(to: UnsafeRawPointer(found))
                    line.add(UnsafeRawBufferPointer(start: base + index, count: newline - index))
                    let finished = line.finish(terminated: true)
                    line = LineInProgress(offset: position + Int64(newline) + 1, limit: limit)
                    keepGoing = try body(finished)
                    if !keepGoing { return }
                    index = newline + 1
                }
            }
            if !keepGoing { return }
            position += Int64(count)
        }
        if line.length > 0 { _ = try body(line.finish(terminated: false)) }
    }

    /// The first line, read no further than `limit` bytes: a longer one comes back cut short
    /// (not whole, its length what was read, no digest), so that telling what the file is never
    /// reads a huge line through.
    func firstLine(limit: Int) throws -> RawLine? {
        var bytes = Data()
        var position: Int64 = 0
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while position < size {
            let count = Int(min(Int64(chunk.count), size - position))
            try read(into: &chunk, at: position, count: count)
            if let newline = chunk[..<count].firstIndex(of: UInt8(ascii: "\n")) {
                bytes.append(contentsOf: chunk[..<newline])
                guard bytes.count <= limit else { break }
                return RawLine(offset: 0, length: bytes.count, bytes: bytes, isTerminated: true, isWhole: true)
            }
            bytes.append(contentsOf: chunk[..<count])
            position += Int64(count)
            if bytes.count > limit { break }
        }
        guard !bytes.isEmpty else { return nil }
        let whole = bytes.count <= limit
        return RawLine(
            offset: 0, length: bytes.count, bytes: whole ? bytes : bytes.prefix(Self.overlongPrefixBytes),
            isTerminated: false, isWhole: whole)
    }

    /// A line being read: whole up to the limit, then only its first bytes and a running digest.
    private struct LineInProgress {
        let offset: Int64
        let limit: Int
        var bytes = Data()
        var length = 0
        var hasher: SHA256?

        init(offset: Int64, limit: Int) {
            self.offset = offset
            self.limit = limit
        }

        mutating func add(_ part: UnsafeRawBufferPointer) {
            guard !part.isEmpty else { return }
            length += part.count
            if hasher == nil && length <= limit {
                if let base = part.baseAddress {
                    bytes.append(base.assumingMemoryBound(to: UInt8.self), count: part.count)
                }
                return
            }
            if hasher == nil {
                var started = SHA256()
                started.update(data: bytes)
                hasher = started
                bytes = bytes.prefix(HistoryFile.overlongPrefixBytes)
            }
            if bytes.count < HistoryFile.overlongPrefixBytes {
                bytes.append(contentsOf: part.prefix(HistoryFile.overlongPrefixBytes - bytes.count))
            }
            hasher?.update(bufferPointer: part)
        }

        func finish(terminated: Bool) -> RawLine {
            RawLine(
                offset: offset, length: length, bytes: bytes, isTerminated: terminated, isWhole: hasher == nil,
                overlongSHA256: hasher?.finalize().hexString)
        }
    }

    // MARK: Reading backward

    /// Calls `body` with each line from the last to the first, until it returns false: what wants
    /// the newest records reads only the end of the file.
    ///
    /// - Parameter limit: the longest line held whole.
    func forEachLineBackward(limit: Int, _ body: (RawLine) throws -> Bool) throws {
        guard size > 0 else { return }
        // The file's bytes from `windowStart` up to `end` at least, read a chunk at a time.
        var window: [UInt8] = []
        var windowStart = size
        func readEarlierChunk() throws {
            let count = Int(min(Int64(Self.chunkBytes), windowStart))
            var chunk = [UInt8](repeating: 0, count: count)
            try read(into: &chunk, at: windowStart - Int64(count), count: count)
            window = chunk + window
            windowStart -= Int64(count)
        }
        try readEarlierChunk()
        var terminated = window.last == UInt8(ascii: "\n")
        // The end of the next line to yield, its newline excluded.
        var end = terminated ? size - 1 : size
        while true {
            window.removeLast(window.count - Int(end - windowStart))
            var start: Int64
            while true {
                if let newline = Self.lastNewline(in: window) {
                    start = windowStart + Int64(newline) + 1
                    break
                }
                if windowStart == 0 {
                    start = 0
                    break
                }
                if window.count > limit {
                    // Longer than any record: found by scanning back, never held.
                    start = try startOfLine(before: windowStart)
                    break
                }
                try readEarlierChunk()
            }
            let length = Int(end - start)
            let line =
                length <= limit
                ? RawLine(
                    offset: start, length: length, bytes: Data(window[Int(start - windowStart)...]),
                    isTerminated: terminated, isWhole: true)
                : try overlong(at: start, length: length, terminated: terminated, limit: limit)
            guard try body(line), start > 0 else { return }
            end = start - 1
            terminated = true
            if start < windowStart {
                window = []
                windowStart = end
            }
        }
    }

    /// Where the line that goes on at `position` starts: just after the newline before it.
    private func startOfLine(before position: Int64) throws -> Int64 {
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytes)
        var position = position
        while position > 0 {
            let count = Int(min(Int64(buffer.count), position))
            try read(into: &buffer, at: position - Int64(count), count: count)
            if let newline = Self.lastNewline(in: buffer[..<count]) {
                return position - Int64(count) + Int64(newline) + 1
            }
            position -= Int64(count)
        }
        return 0
    }

    /// The index of the last newline in `bytes` (counted from its start), nil when none.
    private static func lastNewline(in bytes: some ContiguousBytes) -> Int? {
        bytes.withUnsafeBytes { raw -> Int? in
            var index = raw.count - 1
            while index >= 0 {
                if raw[index] == UInt8(ascii: "\n") { return index }
                index -= 1
            }
            return nil
        }
    }

    /// A line longer than the limit, read forward once more for its digest.
    private func overlong(at offset: Int64, length: Int, terminated: Bool, limit: Int) throws -> RawLine {
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytes)
        var line = LineInProgress(offset: offset, limit: limit)
        var position = offset
        let end = offset + Int64(length)
        while position < end {
            let count = Int(min(Int64(buffer.count), end - position))
            try read(into: &buffer, at: position, count: count)
            buffer.withUnsafeBytes { line.add(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            position += Int64(count)
        }
        return line.finish(terminated: terminated)
    }

    // MARK: Counting

    /// The number of newlines before `end`: the lines that end there.
    func countNewlines(before end: Int64) throws -> Int {
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytes)
        var position: Int64 = 0
        var newlines = 0
        while position < end {
            let count = Int(min(Int64(buffer.count), end - position))
            try read(into: &buffer, at: position, count: count)
            buffer.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var index = 0
                while index < count, let found = memchr(base + index, Int32(UInt8(ascii: "\n")), count - index) {
                    newlines += 1
                    index = base.distance(to: UnsafeRawPointer(found)) + 1
                }
            }
            position += Int64(count)
        }
        return newlines
    }

    /// Reads exactly `count` bytes at `offset` into the start of `buffer`.
    ///
    /// - Throws: `.fileSystem` on an I/O error, or when the file ended sooner (it shrank while read).
    private func read(into buffer: inout [UInt8], at offset: Int64, count: Int) throws {
        var done = 0
        while done < count {
            let result = buffer.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress.map { $0 + done }, count - done, off_t(offset) + off_t(done))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw OrchestratorError(
                    .fileSystem,
                    "cannot read the history \(path) at offset \(offset): \(String(cString: strerror(errno)))")
            }
            if result == 0 {
                throw OrchestratorError(
                    .fileSystem,
                    "the history \(path) changed while it was read (it ends before offset \(offset + Int64(count)))",
                    hint: "only orchestrate appends to it, under the run lock; run the command again")
            }
            done += result
        }
    }
}
