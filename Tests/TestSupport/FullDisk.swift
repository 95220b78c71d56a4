public import Foundation

/// A real full disk: a small tmpfs mounted over a folder (the tests run as root), filled to the
/// last byte when a test says so, and emptied again. Whoever mounts it unmounts it once the
/// processes using files there are stopped (the playground does, even when a test fails).
public final class FullDisk: Sendable {
    public let folder: String
    private let filler: String

    /// Mounts a tmpfs of `megabytes` MiB over `folder` (created when missing).
    public init(at folder: String, megabytes: Int = 32) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        guard mount("tmpfs", folder, "tmpfs", 0, "size=\(megabytes)m,mode=0755") == 0 else {
            throw FullDiskError(
                "cannot mount a tmpfs on \(folder): \(String(cString: strerror(errno))) (the tests need root)")
        }
        self.folder = folder
        filler = folder + "/.filler"
    }

    /// Fills the file system: writes until the kernel answers ENOSPC.
    public func fill() throws {
        let descriptor = open(filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw FullDiskError("cannot create \(filler): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0x2e, count: 1 << 16)
        var size = chunk.count
        while size > 0 {
            let written = chunk.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, size) }
            if written < 0 {
                guard errno == ENOSPC else {
                    throw FullDiskError("filling \(folder): \(String(cString: strerror(errno)))")
                }
                size /= 2  // the last pages, down to the last byte
            }
        }
    }

    /// Whether a one-page file can no longer be written there.
    public var isFull: Bool {
        var info = statvfs()
        return statvfs(folder, &info) == 0 && info.f_bavail == 0
    }

    /// Frees the space `fill()` took.
    public func free() {
        unlink(filler)
    }

    /// Unmounts it (lazily: a process still holding a file there lets go of it when it exits).
    public func unmount() {
        umount2(folder, Int32(MNT_DETACH))
    }
}

public struct FullDiskError: Error, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
