import Foundation

extension OutsideText {
    /// The last `count` lines of a log, for error messages: escaped, at most `outputLimit` bytes.
    /// Only its last 8 KiB are read (a log may be gigabytes), and nothing from what is not a
    /// regular file (opening a FIFO would wait for a writer).
    public static func tail(ofFile path: String, lines count: Int = 10) -> String {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG,
            let handle = FileHandle(forReadingAtPath: path)
        else { return "" }
        defer { try? handle.close() }
        let size = Int(status.st_size)
        guard (try? handle.seek(toOffset: UInt64(max(0, size - 8192)))) != nil,
            let data = try? handle.read(upToCount: 8192)
        else { return "" }
        let text = String(decoding: data, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(count + 1).joined(
            separator: "\n")
        return bounded(
            lines.trimmingCharacters(in: .whitespacesAndNewlines), limit: outputLimit, lines: .kept, keeping: .tail)
    }
}
