import CDurableFiles
public import Foundation

/// Replaces files so that a reader sees the old content or the new one, never a part of either,
/// even after a crash, a `kill -9` or a power loss: the bytes go to a temporary file in the same
/// folder with every `write` checked, the file is flushed (`fsync`), renamed over the target, and
/// the folder is flushed so that the rename itself is durable. A full disk is an error, and the
/// previous content stays in place.
public enum AtomicFile {
    /// Writes `data` to `path` atomically and durably.
    ///
    /// - Parameter permissions: the new file's mode, exactly (whatever the umask).
    /// - Throws: `AtomicFileError` naming the step that failed and why (e.g. no space left).
    public static func write(_ data: Data, to path: String, permissions: mode_t = 0o644) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        try createFolder(folder)
        let temporary = "\(folder)/.\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, permissions)
        guard descriptor >= 0 else { throw AtomicFileError(path: path, step: "creating \(temporary)", code: errno) }
        var failure: AtomicFileError?
        // The umask only removes bits; set the mode exactly so that it is what the caller asked.
        if fchmod(descriptor, permissions) != 0 {
            failure = AtomicFileError(path: path, step: "setting the mode of \(temporary)", code: errno)
        }
        let written = data.withUnsafeBytes { bytes -> Int in
            var offset = 0
            while offset < bytes.count {
                let result = Foundation.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = AtomicFileError(path: path, step: "writing", code: errno)
                    return offset
                }
                offset += result
            }
            return offset
        }
        if failure == nil && written == data.count && fsync(descriptor) != 0 {
            failure = AtomicFileError(path: path, step: "flushing (fsync)", code: errno)
        }
        if close(descriptor) != 0 && failure == nil {
            failure = AtomicFileError(path: path, step: "closing", code: errno)
        }
        if failure == nil && rename(temporary, path) != 0 {
            failure = AtomicFileError(path: path, step: "renaming \(temporary) over it", code: errno)
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        synchronizeFolder(folder)
    }

    /// Creates a folder and the missing folders above it, each with mode `permissions` exactly
    /// (0755: never writable by others, even under `umask 000`). Folders that exist are left as
    /// they are.
    ///
    /// - Throws: `AtomicFileError` when a folder cannot be created, or the path names a file.
    public static func createFolder(_ path: String, permissions: mode_t = 0o755) throws {
        var missing: [String] = []
        var current = URL(fileURLWithPath: path).standardizedFileURL.path
        var info = stat()
        while stat(current, &info) != 0 {
            guard errno == ENOENT else {
                throw AtomicFileError(path: path, step: "creating the folder \(current)", code: errno)
            }
            missing.append(current)
            let parent = (current as NSString).deletingLastPathComponent
            if parent == current || parent.isEmpty { break }
            current = parent
        }
        if missing.isEmpty && (info.st_mode & S_IFMT) != S_IFDIR {
            throw AtomicFileError(path: path, step: "creating the folder (a file is in the way)", code: ENOTDIR)
        }
        for folder in missing.reversed() {
            if mkdir(folder, permissions) != 0 && errno != EEXIST {
                throw AtomicFileError(path: path, step: "creating the folder \(folder)", code: errno)
            }
            // Another process may have created it meanwhile; only ours are set.
            chmod(folder, permissions)
        }
    }

    /// Replaces the folder at `path` with the folder `replacement` (in the same file system) in one
    /// step: a reader, or a crash, sees the whole old folder or the whole new one, never a mix or
    /// nothing. The old folder is then removed.
    ///
    /// - Throws: `AtomicFileError` when the folders cannot be exchanged.
    public static func replaceFolder(at path: String, with replacement: String) throws {
        let parent = (path as NSString).deletingLastPathComponent
        if FileManager.default.fileExists(atPath: path) {
            guard durable_exchange_paths(replacement, path) == 0 else {
                throw AtomicFileError(path: path, step: "exchanging it with \(replacement)", code: errno)
            }
            synchronizeFolder(parent)
            try? FileManager.default.removeItem(atPath: replacement)
        } else {
            guard rename(replacement, path) == 0 else {
                throw AtomicFileError(path: path, step: "renaming \(replacement) to it", code: errno)
            }
            synchronizeFolder(parent)
        }
    }

    /// Flushes a folder's entries (new and renamed files) to disk; best effort, since some file
    /// systems do not flush folders.
    public static func synchronizeFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }

    /// Reads a whole file, or nil when it does not exist.
    ///
    /// - Throws: `AtomicFileError` when it exists but cannot be read, or is not a regular file.
    public static func read(_ path: String, limit: Int = 64 << 20) throws -> Data? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw AtomicFileError(path: path, step: "reading", code: errno)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let kind: String =
                switch info.st_mode & S_IFMT {
                case S_IFDIR: "a folder"
                case S_IFIFO: "a FIFO (named pipe)"
                case S_IFCHR: "a character device"
                case S_IFBLK: "a block device"
                case S_IFSOCK: "a socket"
                default: "a special file"
                }
            throw AtomicFileError(path: path, step: "reading (it is \(kind), not a regular file)", code: EINVAL)
        }
        guard info.st_size <= limit else {
            throw AtomicFileError(path: path, step: "reading (it is larger than \(limit) bytes)", code: EFBIG)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AtomicFileError(path: path, step: "reading", code: errno == 0 ? EIO : errno)
        }
        return data
    }
}

/// A file that could not be written (or read) whole.
public struct AtomicFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    /// What was being done: writing, flushing, renaming.
    public var step: String
    /// The `errno` of the failure.
    public var code: Int32

    public init(path: String, step: String, code: Int32) {
        self.path = path
        self.step = step
        self.code = code
    }

    /// No space (or quota) left on the device.
    public var isDiskFull: Bool { code == ENOSPC || code == EDQUOT || code == EFBIG }

    public var description: String {
        let reason = String(cString: strerror(code))
        let hint =
            isDiskFull
            ? "free space on the disk holding it; the previous content is unchanged"
            : "check that the folder exists and is writable"
        return "\(path): \(step) failed: \(reason)\n  hint: \(hint)"
    }
}
