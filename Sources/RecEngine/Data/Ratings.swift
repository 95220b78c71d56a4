/// Explicit ratings with raw string ids mapped to dense indices in order of first appearance.
///
/// Rows keep the order they were added in; that order is the training order, as in Surprise,
/// whose trainset also numbers users and items by first appearance.
public struct Ratings: Sendable {
    public private(set) var userIDs: [String] = []
    public private(set) var itemIDs: [String] = []
    public private(set) var users: [Int32] = []
    public private(set) var items: [Int32] = []
    public private(set) var values: [Float] = []
    /// The timestamp column, as written in the source, when the source has one.
    public private(set) var timestamps: [String]?

    private var userIndex: [String: Int32] = [:]
    private var itemIndex: [String: Int32] = [:]

    public init(hasTimestamps: Bool = false) {
        timestamps = hasTimestamps ? [] : nil
    }

    public var count: Int { values.count }
    public var userCount: Int { userIDs.count }
    public var itemCount: Int { itemIDs.count }

    public mutating func append(user: String, item: String, rating: Float, timestamp: String? = nil) {
        users.append(Self.index(of: user, in: &userIndex, ids: &userIDs))
        items.append(Self.index(of: item, in: &itemIndex, ids: &itemIDs))
        values.append(rating)
        if timestamps != nil {
            timestamps?.append(timestamp ?? "")
        }
    }

    /// The dense index of a raw user id, if the user has ratings here.
    public func userIndex(of id: String) -> Int32? { userIndex[id] }
    /// The dense index of a raw item id, if the item has ratings here.
    public func itemIndex(of id: String) -> Int32? { itemIndex[id] }

    /// The given rows, in the given order, numbered afresh.
    public func subset(_ rows: some Sequence<Int>) -> Ratings {
        var result = Ratings(hasTimestamps: timestamps != nil)
        for row in rows {
            result.append(
                user: userIDs[Int(users[row])],
                item: itemIDs[Int(items[row])],
                rating: values[row],
                timestamp: timestamps?[row]
            )
        }
        return result
    }

    /// The mean of all ratings, 0 when there are none.
    public var mean: Double {
        values.isEmpty ? 0 : values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
    }

    private static func index(of id: String, in index: inout [String: Int32], ids: inout [String]) -> Int32 {
        if let existing = index[id] {
            return existing
        }
        let next = Int32(ids.count)
        index[id] = next
        ids.append(id)
        return next
    }
}
