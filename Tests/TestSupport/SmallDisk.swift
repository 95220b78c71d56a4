import Foundation

/// A real full disk for tests: a tmpfs of `bytes` mounted on a new folder, unmounted and removed
/// when `body` returns or throws. Needs root (tests run as root).
public func withSmallDisk<T>(bytes: Int, _ body: (String) async throws -> T) async throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
        "orchestrate-small-disk-\(UUID().uuidString)"
    ).path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    guard mount("tmpfs", folder, "tmpfs", 0, "size=\(bytes),mode=0755") == 0 else {
        let reason = String(cString: strerror(errno))
        rmdir(folder)
        throw SmallDiskError(description: "cannot mount a tmpfs on \(folder): \(reason) (the test needs root)")
    }
    defer {
        // Lazily: a descriptor a failed test left open must not keep the mount.
        umount2(folder, Int32(MNT_DETACH))
        rmdir(folder)
    }
    return try await body(folder)
}

/// Fills the file system holding `folder` with a file (`folder/filler`) until a write fails with
/// ENOSPC; remove that file to free the space again.
public func fillDisk(_ folder: String) throws {
    let descriptor = open(folder + "/filler", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
        throw SmallDiskError(description: "cannot create \(folder)/filler: \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    let block = [UInt8](repeating: 0x2E, count: 4096)
    while true {
        // A byte at a time once the blocks no longer fit: not a byte of free space stays.
        let size = block.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if size < 0 {
            guard errno == ENOSPC else {
                throw SmallDiskError(description: "filling \(folder): \(String(cString: strerror(errno)))")
            }
            break
        }
    }
    while block.withUnsafeBytes({ write(descriptor, $0.baseAddress, 1) }) == 1 {}
}

public struct SmallDiskError: Error, CustomStringConvertible {
    public var description: String
}

/// Removes `folder/filler` and returns once the file system shows its space free again (at most
/// 10 s): a child another test forks in that instant holds the file's descriptor until it execs,
/// and tmpfs frees the pages only when the last descriptor closes.
public func freeDisk(_ folder: String) async throws {
    guard unlink(folder + "/filler") == 0 else {
        throw SmallDiskError(description: "cannot remove \(folder)/filler: \(String(cString: strerror(errno)))")
    }
    for _ in 0..<1000 {
        var status = statvfs()
        if statvfs(folder, &status) == 0, UInt64(status.f_bavail) * UInt64(status.f_frsize) >= 64 << 10 { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw SmallDiskError(description: "\(folder) still has no free space 10 s after its filler was removed")
}
