import Foundation

/// The secret values of a pipeline, replaced by `[redacted]` in everything the controller writes
/// or prints (plans, progress, history records, state files), while the child processes still
/// get the real values in their environment and arguments.
///
/// A value is secret when it comes from a variable the pipeline lists under `secrets:`, or from
/// one whose name contains TOKEN, SECRET, PASSWORD or KEY (any case); a stage's `env:` entry
/// with such a name is secret whatever its value's source.
public struct Redaction: Sendable, Equatable {
    public static let placeholder = "[redacted]"
    public static let none = Redaction(values: [])

    /// The values to hide, longest first (so that a value containing another is hidden whole).
    public private(set) var values: [String]

    public init(values: some Sequence<String>) {
        self.values = Set(values.filter { !$0.isEmpty }).sorted { ($0.count, $0) > ($1.count, $1) }
    }

    /// Whether a variable's name marks its value secret by default.
    public static func isSecretName(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["TOKEN", "SECRET", "PASSWORD", "KEY"].contains { upper.contains($0) }
    }

    /// `text` with every secret value replaced.
    public func redact(_ text: String) -> String {
        values.reduce(text) { $0.replacingOccurrences(of: $1, with: Self.placeholder) }
    }

    public func redact(_ texts: [String]) -> [String] {
        values.isEmpty ? texts : texts.map(redact)
    }

    /// A copy of `value` with every string in it (keys too) redacted: it goes through its JSON
    /// form, so no field can be forgotten, nor a secret quoted inside a longer message.
    public func redacted<T: Codable>(_ value: T) -> T {
        guard !values.isEmpty else { return value }
        do {
            // A gate value of -Inf or a metric of NaN goes through as the record writes it.
            let encoder = JSONEncoder()
            encoder.nonConformingFloatEncodingStrategy = NonFiniteNumbers.encoding
            let decoder = JSONDecoder()
            decoder.nonConformingFloatDecodingStrategy = NonFiniteNumbers.decoding
            let data = try encoder.encode(value)
            let tree = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            let clean = try JSONSerialization.data(withJSONObject: redactTree(tree), options: [.fragmentsAllowed])
            return try decoder.decode(T.self, from: clean)
        } catch {
            // Encodable values of this module always round-trip; should one not, hide nothing
            // rather than lose the record.
            return value
        }
    }

    private static func isDigestKey(_ key: String) -> Bool {
        key == "fingerprint" || key.lowercased().hasSuffix("sha256")
    }

    private func redactTree(_ node: Any) -> Any {
        switch node {
        case let text as String: return redact(text)
        case let array as [Any]: return array.map(redactTree)
        case let object as [String: Any]:
            var result: [String: Any] = [:]
            for (key, value) in object {
                // Digests are computed, never secret, and must stay intact (a short secret may
                // occur in hex by chance).
                if Self.isDigestKey(key), let text = value as? String, text.allSatisfy(\.isHexDigit) {
                    result[key] = text
                } else {
                    result[redact(key)] = redactTree(value)
                }
            }
            return result
        default: return node
        }
    }
}
