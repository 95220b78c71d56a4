public import Foundation

/// A peer's JSON answer decoded into a model, the one way the controller reads one: the whole
/// answer is read through first (every number must fit a Double, every string be Unicode, as
/// `JSONSerialization` required), then decoded into `T`, whose fields are lenient (`lenient`): a
/// field that is absent or of another type reads as nil, as a `JSONSerialization` tree's `as?` did.
/// An object naming a key twice reads its first value.
public enum JSONAnswer {
    /// `T` decoded from `data`; nil when `data` is not JSON, holds a value JSON cannot carry, or
    /// does not have `T`'s shape (an object where `T` is one, an array where `T` is one).
    public static func decode<T: Decodable>(_ type: T.Type, from data: Data) -> T? {
        guard (try? JSONDecoder().decode(Checked.self, from: data)) != nil else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }

    /// Any JSON value, read through to its leaves so that every number and string in it is
    /// checked, and not kept.
    private struct Checked: Decodable {
        init(from decoder: any Decoder) throws {
            if let object = try? decoder.container(keyedBy: AnyKey.self) {
                for key in object.allKeys { _ = try object.decode(Checked.self, forKey: key) }
            } else if var array = try? decoder.unkeyedContainer() {
                while !array.isAtEnd { _ = try array.decode(Checked.self) }
            } else {
                let value = try decoder.singleValueContainer()
                if value.decodeNil() || (try? value.decode(Bool.self)) != nil || (try? value.decode(String.self)) != nil
                {
                    return
                }
                _ = try value.decode(Double.self)
            }
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension KeyedDecodingContainer {
    /// The value at `key`, nil when it is absent, null or of another type.
    public func lenient<T: Decodable>(_ type: T.Type, forKey key: Key) -> T? {
        (try? decodeIfPresent(type, forKey: key)) ?? nil
    }
}
