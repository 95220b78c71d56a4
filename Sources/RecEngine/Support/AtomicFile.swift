public import Foundation

/// Writes files so that a reader sees the old content or the new, never a half-written file.
public enum AtomicFile {
    /// Writes `data` to a temporary file in the target's folder, flushes it, then renames it over
    /// the target.
    public static func write(_ data: Data, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try data.write(to: temporary)
            let handle = try FileHandle(forWritingTo: temporary)
            try handle.synchronize()
            try handle.close()
            if rename(temporary.path, url.path) != 0 {
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            // The rename itself is durable once the folder is flushed.
            synchronizeFolder(folder.path)
        } catch {
            try? FileManager.default.removeItem(at: temporary)
            throw RecEngineError(
                .fileSystem, "cannot write the file: \(error.localizedDescription)", location: path,
                hint: "check that the folder is writable and the disk is not full")
        }
    }

    /// Flushes a folder's entries (new and renamed files) to disk.
    public static func synchronizeFolder(_ path: String) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY)
        guard descriptor >= 0 else { return }
        fsync(descriptor)
        close(descriptor)
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal (digests in manifests, provenance and logs).
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
