import Crypto
import Foundation
import RecEngineContract

/// Implicit feedback: how many events each user had with each item. A rating counts one event,
/// each watched minute one more. Ids keep the numbering of the ratings (first appearance), and
/// users or items seen only in watches follow.
public struct Interactions: Sendable {
    public private(set) var userIDs: [String]
    public private(set) var itemIDs: [String]
    /// Observed pairs by user: items `userItems[userOffsets[u]..<userOffsets[u + 1]]` in ascending
    /// order, with their event counts in `userEvents`.
    public private(set) var userOffsets: [Int32] = [0]
    public private(set) var userItems: [Int32] = []
    public private(set) var userEvents: [Float] = []
    /// The same pairs by item.
    public private(set) var itemOffsets: [Int32] = [0]
    public private(set) var itemUsers: [Int32] = []
    public private(set) var itemEvents: [Float] = []
    /// All events: ratings plus watched minutes.
    public private(set) var events: Int = 0

    public var userCount: Int { userIDs.count }
    public var itemCount: Int { itemIDs.count }
    /// The number of distinct observed (user, item) pairs.
    public var pairs: Int { userItems.count }

    /// The interactions of `ratings` and, optionally, of watch events given as raw ids.
    public init(ratings: Ratings, watches: WatchEvents? = nil) {
        userIDs = ratings.userIDs
        itemIDs = ratings.itemIDs
        var users = ratings.users
        var items = ratings.items
        if let watches {
            var userIndex = Dictionary(uniqueKeysWithValues: ratings.userIDs.enumerated().map { ($1, Int32($0)) })
            var itemIndex = Dictionary(uniqueKeysWithValues: ratings.itemIDs.enumerated().map { ($1, Int32($0)) })
            func index(_ id: String, _ map: inout [String: Int32], _ ids: inout [String]) -> Int32 {
                if let known = map[id] { return known }
                let next = Int32(ids.count)
                map[id] = next
                ids.append(id)
                return next
            }
            let userMap = watches.userIDs.map { index($0, &userIndex, &userIDs) }
            let itemMap = watches.itemIDs.map { index($0, &itemIndex, &itemIDs) }
            users += watches.users.map { userMap[Int($0)] }
            items += watches.items.map { itemMap[Int($0)] }
        }
        events = users.count
        (userOffsets, userItems, userEvents) = Self.compressed(rows: users, columns: items, rowCount: userIDs.count)
        (itemOffsets, itemUsers, itemEvents) = Self.compressed(rows: items, columns: users, rowCount: itemIDs.count)
    }

    /// Rows grouped by `rows` (a counting sort), each group's columns ascending with duplicates
    /// merged into an event count.
    static func compressed(rows: [Int32], columns: [Int32], rowCount: Int) -> ([Int32], [Int32], [Float]) {
        var starts = [Int](repeating: 0, count: rowCount + 1)
        for row in rows { starts[Int(row) + 1] += 1 }
        for r in 0..<rowCount { starts[r + 1] += starts[r] }
        var sorted = [Int32](repeating: 0, count: rows.count)
        var next = starts
        for (row, column) in zip(rows, columns) {
            sorted[next[Int(row)]] = column
            next[Int(row)] += 1
        }
        var offsets = [Int32](repeating: 0, count: rowCount + 1)
        var merged = [Int32]()
        var counts = [Float]()
        merged.reserveCapacity(rows.count)
        counts.reserveCapacity(rows.count)
        for r in 0..<rowCount {
            var group = sorted[starts[r]..<starts[r + 1]]
            group.sort()
            var previous: Int32 = -1
            for column in group {
                if column == previous {
                    counts[counts.count - 1] += 1
                } else {
                    merged.append(column)
                    counts.append(1)
                    previous = column
                }
            }
            offsets[r + 1] = Int32(merged.count)
        }
        return (offsets, merged, counts)
    }
}

/// Watch events (`timestamp,user_id,movie_id,minute`, as `recengine ingest --watches` writes
/// them), one per watched minute, with ids numbered by first appearance.
public struct WatchEvents: Sendable {
    public private(set) var userIDs: [String] = []
    public private(set) var itemIDs: [String] = []
    public private(set) var users: [Int32] = []
    public private(set) var items: [Int32] = []
    public var path: String
    public var sha256: String

    /// The largest watches file read: 4 GiB.
    public static let maximumFileSize = 4 << 30

    /// Reads a watches CSV.
    ///
    /// - Throws: `RecEngineError` `.invalidRatings` naming the line of the first row without four
    ///   fields or with an empty id, or a file that is not a regular file or too large;
    ///   `.fileSystem` when it is missing or unreadable.
    public static func load(path: String) throws -> WatchEvents {
        let data: Data
        do {
            data = try InputFile.read(path, limit: maximumFileSize)
        } catch {
            throw RecEngineError(
                error.isBadInput ? .invalidRatings : .fileSystem, "cannot read the watches file: \(error.reason)",
                location: path,
                hint: "give the file `recengine ingest --watches` writes (timestamp,user_id,movie_id,minute)")
        }
        var result = WatchEvents(path: path, sha256: SHA256.hash(data: data).hexString)
        var userIndex: [String: Int32] = [:]
        var itemIndex: [String: Int32] = [:]
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty || (lineNumber == 1 && line.starts(with: Array("timestamp,".utf8))) { continue }
            let fields = line.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
            guard fields.count == 4, !fields[1].isEmpty, !fields[2].isEmpty else {
                throw RecEngineError(
                    .invalidRatings, "line \(lineNumber) is not timestamp,user_id,movie_id,minute", location: path,
                    hint: "give the file `recengine ingest --watches` writes")
            }
            func index(_ bytes: Data, _ map: inout [String: Int32], _ ids: inout [String]) -> Int32 {
                let id = String(decoding: bytes, as: UTF8.self)
                if let known = map[id] { return known }
                let next = Int32(ids.count)
                map[id] = next
                ids.append(id)
                return next
            }
            result.users.append(index(fields[1], &userIndex, &result.userIDs))
            result.items.append(index(fields[2], &itemIndex, &result.itemIDs))
        }
        return result
    }

    init(path: String, sha256: String) {
        self.path = path
        self.sha256 = sha256
    }
}
