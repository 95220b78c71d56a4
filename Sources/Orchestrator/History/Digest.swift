import Crypto
import Foundation
import StrictYAML
import RecEngine

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
    public static func of(_ path: String) throws -> ArtifactDigest {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            return ArtifactDigest(path: path, sha256: nil, size: nil, kind: nil)
        }
        if !isDirectory.boolValue {
            let (digest, size) = try hashFile(path)
            return ArtifactDigest(path: path, sha256: digest, size: size, kind: "file")
        }
        guard let enumerator = FileManager.default.enumerator(atPath: path) else {
            throw OrchestratorError(.fileSystem, "cannot list \(path)")
        }
        var files: [String] = []
        while let relative = enumerator.nextObject() as? String {
            var childIsDirectory: ObjCBool = false
            let full = path + "/" + relative
            if FileManager.default.fileExists(atPath: full, isDirectory: &childIsDirectory), !childIsDirectory.boolValue,
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
            total += size
        }
        return ArtifactDigest(path: path, sha256: hasher.finalize().hexString, size: total, kind: "directory")
    }

    static func hashFile(_ path: String) throws -> (String, Int64) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OrchestratorError(.fileSystem, "cannot read \(path) to compute its digest")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return (hasher.finalize().hexString, size)
    }
}

func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).hexString
}
