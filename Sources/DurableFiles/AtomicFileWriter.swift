public import Foundation

/// A file written in pieces that appears whole or not at all: what `AtomicFile.write` does for
/// data held in memory, for data too large to hold (a day of log lines). The pieces go to a
/// temporary file beside `path`, buffered; `commit` flushes it to disk and renames it over
/// `path`. Until then `path` keeps its previous content, and a writer that is dropped (or
/// `discard`ed) without a commit removes its temporary file.
public final class AtomicFileWriter {
    public let path: String
    private let temporary: String
    private var descriptor: Int32
    private var buffer: [UInt8] = []
    /// Committed or discarded: the temporary file is gone.
    private var finished = false
    /// Bytes written so far, buffered or not.
    public private(set) var count: Int64 = 0
    private static let bufferSize = 1 << 16

    /// Creates the temporary file, and the folders above `path` that are missing.
    ///
    /// - Parameter permissions: the file's mode, exactly (whatever the umask).
    /// - Throws: `AtomicFileError` when the temporary file cannot be created.
    public init(path: String, permissions: mode_t = 0o644) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        try AtomicFile.createFolder(folder)
        self.path = path
        temporary = "\(folder)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard descriptor >= 0 else { throw AtomicFileError(path: path, step: "creating \(temporary)", code: errno) }
        // The umask only removes bits; set the mode exactly so that it is what the caller asked.
        if fchmod(descriptor, permissions) != 0 {
            let error = AtomicFileError(path: path, step: "setting the mode of \(temporary)", code: errno)
            discard()
            throw error
        }
        buffer.reserveCapacity(Self.bufferSize)
    }

    deinit {
        discard()
    }

    /// Appends `text` as UTF-8.
    public func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Appends `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else {
            throw AtomicFileError(path: path, step: "writing (after commit or discard)", code: EBADF)
        }
        count += Int64(bytes.count)
        if buffer.count + bytes.count > Self.bufferSize { try flushBuffer() }
        if bytes.count >= Self.bufferSize {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    /// Flushes the file to disk and renames it over `path`.
    ///
    /// - Throws: `AtomicFileError` naming the step that failed (e.g. no space left); `path` then
    ///   keeps its previous content and the temporary file is removed.
    public func commit() throws {
        guard !finished else {
            throw AtomicFileError(path: path, step: "committing (after commit or discard)", code: EBADF)
        }
        do {
            try flushBuffer()
            guard fsync(descriptor) == 0 else {
                throw AtomicFileError(path: path, step: "flushing (fsync)", code: errno)
            }
            let closed = close(descriptor)
            descriptor = -1
            guard closed == 0 else { throw AtomicFileError(path: path, step: "closing", code: errno) }
            guard rename(temporary, path) == 0 else {
                throw AtomicFileError(path: path, step: "renaming \(temporary) over it", code: errno)
            }
            finished = true
        } catch {
            discard()
            throw error
        }
        AtomicFile.synchronizeFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// Removes the temporary file; `path` is left as it was. Nothing happens after a commit.
    public func discard() {
        guard !finished else { return }
        finished = true
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
        unlink(temporary)
    }

    private func flushBuffer() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let result = Foundation.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if result < 0 {
                if errno == EINTR { continue }
                throw AtomicFileError(path: path, step: "writing", code: errno)
            }
            offset += result
        }
    }
}
