import DurableFiles
import Foundation

/// How many distinct items a ratings file holds, read by the rules of `recengine`'s ratings
/// reader (`RatingsFile.load` with bad rows skipped: the format from the first line, the header,
/// the rows with every field, both ids and a finite rating within 1...5), without storing the
/// ratings. `validate` asks it for EASE's memory check (`EASEMemory`), so that the controller
/// refuses a catalogue too large for the machine before any stage runs without linking the
/// training code. `RatingsCatalogueTests` (RecEngineTests) keeps it equal to the reader's count.
public enum RatingsCatalogue {
    /// The largest file read: the ratings reader's bound (2 GiB).
    public static let maximumFileSize = 2 << 30

    /// The number of distinct items of the file's valid ratings; nil when the reader would refuse
    /// the file (missing, not a regular file, larger than `maximumFileSize`, a header it does not
    /// take, no valid rating), which the stage then reports when it runs.
    public static func itemCount(ofFile path: String) -> Int? {
        guard case .regular(let size) = FileKind.of(path), size <= maximumFileSize,
            let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        else { return nil }
        return itemCount(of: data)
    }

    /// `itemCount(ofFile:)` of a file's bytes.
    static func itemCount(of data: Data) -> Int? {
        var separator: UInt8 = UInt8(ascii: ",")
        var columns = 0
        var sawFirstLine = false
        var items = Set<String>()
        var refused = false
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var start = 0
            while start < bytes.count && !refused {
                var end = start
                while end < bytes.count && bytes[end] != UInt8(ascii: "\n") { end += 1 }
                var lineEnd = end
                if lineEnd > start && bytes[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                let line = UnsafeRawBufferPointer(rebasing: bytes[start..<lineEnd])
                start = end + 1
                if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
                var fields = line.split(separator: separator, omittingEmptySubsequences: false)
                if !sawFirstLine {
                    sawFirstLine = true
                    if line.contains(UInt8(ascii: "\t")) {
                        separator = UInt8(ascii: "\t")
                        fields = line.split(separator: separator, omittingEmptySubsequences: false)
                        columns = fields.count
                        guard columns == 3 || columns == 4 else {
                            refused = true
                            return
                        }
                    } else {
                        columns = fields.count
                        guard columns == 3 || columns == 4 else {
                            refused = true
                            return
                        }
                        if Float(String(decoding: fields[2], as: UTF8.self)) == nil {
                            let header = fields.map { String(decoding: $0, as: UTF8.self) }
                            refused = header != Array(["user_id", "movie_id", "rating", "timestamp"].prefix(columns))
                            continue
                        }
                    }
                }
                guard fields.count == columns, !fields[0].isEmpty, !fields[1].isEmpty,
                    let rating = Float(String(decoding: fields[2], as: UTF8.self)), rating.isFinite, rating >= 1,
                    rating <= 5
                else { continue }
                items.insert(String(decoding: fields[1], as: UTF8.self))
            }
        }
        return refused || items.isEmpty ? nil : items.count
    }
}
