import Crypto
import DurableFiles
public import Foundation
import RecEngineContract

/// The SHA-256 and size of a file or folder, as recorded in provenance.
public struct ArtifactDigest: Sendable, Codable, Equatable {
    public var path: String
    /// nil when the path does not exist.
    public var sha256: String?
    public var size: Int64?
    public var kind: String?

    /// Hashes a file's bytes, or a folder's files: SHA-256 over `relative path NUL file sha256 LF`
    /// for every regular file in sorted order, so that a folder's digest changes when any file in
    /// it is added, removed, renamed or altered.
    ///
    /// - Throws: `.invalidInput` for a FIFO, a device or a socket, which are never opened (a FIFO
    ///   blocks, `/dev/zero` never ends); `.fileSystem` when a file cannot be read.
    public static func of(_ path: String) throws -> ArtifactDigest {
        switch FileKind.of(path) {
        case .missing:
            return ArtifactDigest(path: path, sha256: nil, size: nil, kind: nil)
        case .regular:
            let (digest, size) = try hashFile(path)
            return ArtifactDigest(path: path, sha256: digest, size: size, kind: "file")
        case .special(let kind):
            throw OrchestratorError(
                .invalidInput, "\(path) is \(kind), not a file or folder: it cannot be hashed",
                hint: "inputs and outputs are regular files and folders")
        case .directory:
            break
        }
        guard let enumerator = FileManager.default.enumerator(atPath: path) else {
            throw OrchestratorError(.fileSystem, "cannot list \(path)")
        }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            // Only regular files count: a FIFO or device inside a folder is never opened.
            if case .regular = FileKind.of(path + "/" + relative),
                !URL(fileURLWithPath: relative).lastPathComponent.hasPrefix(".")
            {
                files.append(relative)
            }
        }
        var hasher = SHA256()
        var total: Int64 = 0
        for relative in files.sorted() {
            let (digest, size) = try hashFile(path + "/" + relative)
            hasher.update(data: Data("\(relative)\0\(digest)\n".utf8))
            total = total.addingReportingOverflow(size).overflow ? .max : total + size
        }
        return ArtifactDigest(path: path, sha256: hasher.finalize().hexString, size: total, kind: "directory")
    }

    package static func hashFile(_ path: String) throws -> (String, Int64) {
        // Non-blocking, then checked on the open file: a path swapped for a FIFO after `FileKind`
        // looked is refused, not waited on.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw OrchestratorError(
                .fileSystem, "cannot read \(path) to compute its digest: \(String(cString: strerror(errno)))")
        }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        defer { try? handle.close() }
        var info = stat()
        guard fstat(descriptor, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw OrchestratorError(
                .invalidInput, "\(path) is not a regular file: it cannot be hashed",
                hint: "inputs and outputs are regular files and folders")
        }
        var hasher = SHA256()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size = size.addingReportingOverflow(Int64(chunk.count)).overflow ? .max : size + Int64(chunk.count)
        }
        return (hasher.finalize().hexString, size)
    }
}

package func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).hexString
}
