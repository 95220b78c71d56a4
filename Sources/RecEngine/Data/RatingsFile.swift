import Crypto
import DurableFiles
public import Foundation
import RecEngineContract

/// The layouts of ratings files RecEngine reads, detected from the first line.
public enum RatingsFormat: String, Sendable, Codable {
    /// The seed's CSV: a header `user_id,movie_id,rating[,timestamp]`, then one rating per row.
    case csv
    /// MovieLens `u.data`: tab-separated `user item rating timestamp`, no header.
    case movieLensTSV = "movielens-tsv"
}

/// What to do with a row that is not a rating.
public enum BadRowPolicy: String, Sendable, CaseIterable {
    /// Stop at the first bad row with an error naming file, line and problem.
    case fail
    /// Skip bad rows, count them and keep the first few for the report.
    case skip
}

/// The range ratings must lie in; predictions are clipped to it.
public struct RatingScale: Sendable, Codable, Equatable {
    public var low: Float
    public var high: Float

    public init(low: Float = 1, high: Float = 5) {
        self.low = low
        self.high = high
    }
}

/// A row that was skipped under `BadRowPolicy.skip`.
public struct SkippedRow: Sendable, Codable, Equatable {
    public var line: Int
    public var problem: String

    public init(line: Int, problem: String) {
        self.line = line
        self.problem = problem
    }
}

/// A ratings file read into memory, with what was learnt while reading it.
public struct RatingsFile: Sendable {
    /// The largest ratings file read: 2 GiB (MovieLens 25M's ratings.csv is 678 MB). Read whole
    /// into memory, so a bound is what keeps a huge or endless file from exhausting it.
    public static let maximumFileSize = 2 << 30

    /// How many skipped rows are kept with their line and problem.
    public static let keptSkippedRows = 20

    public var path: String
    public var ratings: Ratings
    public var format: RatingsFormat
    /// The SHA-256 of the file's bytes, as lowercase hex.
    public var sha256: String
    public var skippedRowCount: Int
    /// The first `keptSkippedRows` skipped rows.
    public var skippedRows: [SkippedRow]

    public init(
        path: String, ratings: Ratings, format: RatingsFormat, sha256: String, skippedRowCount: Int = 0,
        skippedRows: [SkippedRow] = []
    ) {
        self.path = path
        self.ratings = ratings
        self.format = format
        self.sha256 = sha256
        self.skippedRowCount = skippedRowCount
        self.skippedRows = skippedRows
    }

    /// Reads a ratings file, detecting its format.
    ///
    /// - Throws: `RecEngineError` with code `.invalidRatings` naming file and line for the first bad
    ///   row under `.fail`, for a file with no ratings at all, or for one that is not a regular file
    ///   or is larger than `maximumFileSize`; `.fileSystem` when missing or unreadable.
    public static func load(
        path: String,
        onBadRow policy: BadRowPolicy = .fail,
        scale: RatingScale = RatingScale()
    ) throws -> RatingsFile {
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try InputFile.read(path, limit: maximumFileSize))
        } catch {
            throw RecEngineError(
                error.isBadInput ? .invalidRatings : .fileSystem, "cannot read the ratings file: \(error.reason)",
                location: path,
                hint: error.isBadInput
                    ? "give a regular file of at most \(maximumFileSize >> 20) MiB (split a larger one, or sample it)"
                    : "check the path; relative paths are taken from the current directory")
        }
        var parser = RatingsParser(path: path, policy: policy, scale: scale)
        try parser.parse(bytes)
        guard parser.ratings.count > 0 else {
            throw RecEngineError(
                .invalidRatings,
                parser.skippedRowCount > 0
                    ? "no valid ratings: all \(parser.skippedRowCount) rows were malformed"
                    : "the file holds no ratings",
                location: path,
                hint:
                    "expected CSV with a header user_id,movie_id,rating[,timestamp] or MovieLens u.data (tab-separated)"
            )
        }
        return RatingsFile(
            path: path,
            ratings: parser.ratings,
            format: parser.format,
            sha256: SHA256.hash(data: bytes).hexString,
            skippedRowCount: parser.skippedRowCount,
            skippedRows: parser.skippedRows
        )
    }

    /// Writes ratings as the seed's CSV (`user_id,movie_id,rating[,timestamp]` with a header),
    /// atomically: a temporary file next to the target, then a rename.
    ///
    /// - Parameter permissions: the file's mode (the ingest's is 0600 or stricter).
    public static func writeCSV(_ ratings: Ratings, to path: String, permissions: mode_t = 0o644) throws {
        var text = ratings.timestamps == nil ? "user_id,movie_id,rating\n" : "user_id,movie_id,rating,timestamp\n"
        text.reserveCapacity(ratings.count * 24)
        for row in 0..<ratings.count {
            text += ratings.userIDs[Int(ratings.users[row])]
            text += ","
            text += ratings.itemIDs[Int(ratings.items[row])]
            text += ","
            text += formatRating(ratings.values[row])
            if let timestamps = ratings.timestamps {
                text += ","
                text += timestamps[row]
            }
            text += "\n"
        }
        try AtomicFile.write(Data(text.utf8), to: path, permissions: permissions)
    }

    static func formatRating(_ value: Float) -> String {
        value == value.rounded() && abs(value) < 1e6 ? String(Int(value)) : String(value)
    }
}

/// A byte-level parser of ratings files: one pass, no per-row allocations beyond the ids.
struct RatingsParser {
    let path: String
    let policy: BadRowPolicy
    let scale: RatingScale
    var ratings = Ratings()
    var format = RatingsFormat.csv
    var skippedRowCount = 0
    var skippedRows: [SkippedRow] = []

    private var columnCount = 0

    init(path: String, policy: BadRowPolicy, scale: RatingScale) {
        self.path = path
        self.policy = policy
        self.scale = scale
    }

    mutating func parse(_ bytes: [UInt8]) throws {
        var lineNumber = 0
        var start = 0
        var sawFirstLine = false
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: "\n") {
                end += 1
            }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == UInt8(ascii: "\r") {
                lineEnd -= 1
            }
            let line = bytes[start..<lineEnd]
            start = end + 1
            if line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) {
                continue
            }
            if !sawFirstLine {
                sawFirstLine = true
                if try readHeader(line, lineNumber: lineNumber) {
                    continue
                }
            }
            try parseRow(line, lineNumber: lineNumber)
        }
    }

    /// Detects the format from the first line; returns whether that line is a header.
    private mutating func readHeader(_ line: ArraySlice<UInt8>, lineNumber: Int) throws -> Bool {
        if line.contains(UInt8(ascii: "\t")) {
            format = .movieLensTSV
            columnCount = fields(of: line).count
            ratings = Ratings(hasTimestamps: columnCount == 4)
            guard columnCount == 3 || columnCount == 4 else {
                throw RecEngineError(
                    .invalidRatings, "expected 3 or 4 tab-separated columns, found \(columnCount)",
                    location: "\(path):\(lineNumber)",
                    hint: "MovieLens u.data has user, item, rating and timestamp separated by tabs")
            }
            return false
        }
        format = .csv
        let header = fields(of: line).map { String(decoding: $0, as: UTF8.self) }
        columnCount = header.count
        ratings = Ratings(hasTimestamps: columnCount == 4)
        guard header.count == 3 || header.count == 4 else {
            throw RecEngineError(
                .invalidRatings, "expected 3 or 4 comma-separated columns, found \(header.count)",
                location: "\(path):\(lineNumber)",
                hint: "the header must be user_id,movie_id,rating[,timestamp]")
        }
        if Float(header[2]) != nil {
            return false
        }
        let expected = ["user_id", "movie_id", "rating", "timestamp"].prefix(header.count)
        guard header == Array(expected) else {
            throw RecEngineError(
                .invalidRatings, "unexpected header \(header.joined(separator: ","))",
                location: "\(path):\(lineNumber)",
                hint: "the header must be \(expected.joined(separator: ","))")
        }
        return true
    }

    private mutating func parseRow(_ line: ArraySlice<UInt8>, lineNumber: Int) throws {
        let columns = fields(of: line)
        let problem: String?
        if columns.count != columnCount {
            problem = "expected \(columnCount) fields, found \(columns.count)"
        } else if columns[0].isEmpty {
            problem = "empty user id"
        } else if columns[1].isEmpty {
            problem = "empty movie id"
        } else if let rating = Float(String(decoding: columns[2], as: UTF8.self)), rating.isFinite {
            if rating < scale.low || rating > scale.high {
                problem =
                    "rating \(RatingsFile.formatRating(rating)) outside \(RatingsFile.formatRating(scale.low))...\(RatingsFile.formatRating(scale.high))"
            } else {
                ratings.append(
                    user: String(decoding: columns[0], as: UTF8.self),
                    item: String(decoding: columns[1], as: UTF8.self),
                    rating: rating,
                    timestamp: columnCount == 4 ? String(decoding: columns[3], as: UTF8.self) : nil
                )
                problem = nil
            }
        } else {
            problem = "rating \"\(String(decoding: columns[2], as: UTF8.self))\" is not a number"
        }
        guard let problem else { return }
        switch policy {
        case .fail:
            throw RecEngineError(
                .invalidRatings, problem, location: "\(path):\(lineNumber)",
                hint: "fix the row, or pass --on-bad-row skip to skip and count malformed rows")
        case .skip:
            skippedRowCount += 1
            if skippedRows.count < RatingsFile.keptSkippedRows {
                skippedRows.append(SkippedRow(line: lineNumber, problem: problem))
            }
        }
    }

    private func fields(of line: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        let separator = format == .movieLensTSV ? UInt8(ascii: "\t") : UInt8(ascii: ",")
        return line.split(separator: separator, omittingEmptySubsequences: false)
    }
}
