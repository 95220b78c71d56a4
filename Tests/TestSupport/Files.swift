public import Foundation

/// A temporary folder removed when the closure returns, even when it throws.
public func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async rethrows -> T {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("orchestrate-tests-\(UUID().uuidString)")
        .path
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

/// Writes a text file, creating its folder.
public func write(_ text: String, to path: String) throws {
    try FileManager.default.createDirectory(
        atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// A file's text, empty when it cannot be read.
public func read(_ path: String) -> String {
    String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
}

/// The number of newline-ended lines in a file (nil when it cannot be opened), counted on a thread
/// of its own: a large file read on the cooperative pool stalls the tests running beside it.
public func lineCount(ofFile path: String) async -> Int? {
    await onOwnThread { countLines(path) }
}

private func countLines(_ path: String) -> Int? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var lines = 0
    while case let count = fread(&buffer, 1, buffer.count, file), count > 0 {
        lines += buffer[..<count].withUnsafeBytes { bytes in
            var found = 0
            var offset = 0
            while offset < count, let base = bytes.baseAddress,
                let newline = memchr(base + offset, 0x0A, count - offset)
            {
                found += 1
                offset = base.distance(to: UnsafeRawPointer(newline)) + 1
            }
            return found
        }
    }
    return lines
}
