public import Yams

/// Reads typed values out of a YAML node tree, collecting every problem with its line and column
/// instead of stopping at the first, so that `validate` can report them all at once.
public final class NodeReader {
    public let file: String
    public let environment: [String: String]
    /// The first `InputLimits.maxCollectedIssues` problems; `issueCount` counts them all.
    public private(set) var issues: [ValidationIssue] = []
    public private(set) var issueCount = 0
    /// Every `${VAR}` substituted so far, with the text put in its place (to redact secrets).
    public private(set) var interpolated: [String: String] = [:]

    public init(file: String, environment: [String: String]) {
        self.file = file
        self.environment = environment
    }

    public func report(_ node: Node?, _ path: String, _ message: String) {
        issueCount += 1
        guard issues.count < InputLimits.maxCollectedIssues else { return }
        if let mark = node?.mark {
            issues.append(
                ValidationIssue(file: file, line: mark.line, column: mark.column, path: path, message: message))
        } else {
            // Nodes without a mark come from `--set` overrides.
            issues.append(
                ValidationIssue(file: node == nil ? file : "--set", line: 0, column: 0, path: path, message: message))
        }
    }

    /// A problem with a `--set` override as a whole.
    public func reportOverride(_ key: String, _ message: String) {
        issueCount += 1
        guard issues.count < InputLimits.maxCollectedIssues else { return }
        issues.append(ValidationIssue(file: "--set", line: 0, column: 0, path: echoed(key), message: message))
    }

    /// The keys of a mapping; unknown keys, duplicates and non-mappings are reported.
    public func mapping(_ node: Node, _ path: String, allowed: [String]) -> [String: Node]? {
        guard case .mapping(let mapping) = node else {
            report(node, path, "expected a mapping (key: value lines), got \(describe(node))")
            return nil
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                report(keyNode, path, "keys must be plain strings")
                continue
            }
            let keyPath = join(path, echoed(key, limit: 40))
            if result[key] != nil {
                report(keyNode, keyPath, "duplicate key \"\(echoed(key))\"")
                continue
            }
            if !allowed.contains(key) {
                // Past the problems kept, only the count matters: no suggestion is computed.
                guard issues.count < InputLimits.maxCollectedIssues else {
                    issueCount += 1
                    continue
                }
                let hint =
                    suggestion(for: key, among: allowed).map { ": did you mean \"\($0)\"?" }
                    ?? " (allowed: \(allowed.joined(separator: ", ")))"
                report(keyNode, keyPath, "unknown key \"\(echoed(key))\"\(hint)")
                continue
            }
            result[key] = value
        }
        return result
    }

    /// A free-form mapping of strings (e.g. `env:`), values interpolated.
    public func stringMap(_ node: Node?, _ path: String) -> [String: String] {
        guard let node else { return [:] }
        guard case .mapping(let mapping) = node else {
            report(node, path, "expected a mapping of names to strings, got \(describe(node))")
            return [:]
        }
        var result: [String: String] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else { continue }
            if result[key] != nil {
                report(keyNode, join(path, echoed(key, limit: 40)), "duplicate key \"\(echoed(key))\"")
            }
            if let text = string(value, join(path, key)) { result[key] = text }
        }
        return result
    }

    public func required(_ map: [String: Node], _ key: String, _ path: String, in node: Node) -> Node? {
        if let value = map[key] { return value }
        report(node, join(path, key), "missing required key \"\(key)\"")
        return nil
    }

    /// A scalar's text with `${VAR}` substituted.
    public func string(_ node: Node?, _ path: String) -> String? {
        guard let node else { return nil }
        guard case .scalar(let scalar) = node else {
            report(node, path, "expected a single value, got \(describe(node))")
            return nil
        }
        switch Interpolation.apply(scalar.string, environment: environment, used: &interpolated) {
        case .success(let text):
            return text
        case .failure(.unset(let name)):
            report(node, path, "variable ${\(name)} is not set: export it, or give a default with ${\(name):-value}")
        case .failure(.malformed(let message)):
            report(node, path, message)
        }
        return nil
    }

    public func nonEmptyString(_ node: Node?, _ path: String) -> String? {
        guard let text = string(node, path) else { return nil }
        if text.isEmpty { report(node, path, "must not be empty") }
        return text.isEmpty ? nil : text
    }

    public func int(_ node: Node?, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, path) else { return nil }
        guard let value = Int(text) else {
            report(node, path, "expected a whole number, got \"\(echoed(text))\"")
            return nil
        }
        guard range.contains(value) else {
            report(node, path, "must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    public func double(_ node: Node?, _ path: String) -> Double? {
        guard let text = string(node, path) else { return nil }
        guard let value = Double(text), value.isFinite else {
            report(node, path, "expected a number, got \"\(echoed(text))\"")
            return nil
        }
        return value
    }

    public func bool(_ node: Node?, _ path: String) -> Bool? {
        guard let text = string(node, path) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            report(node, path, "expected true or false, got \"\(echoed(text))\"")
            return nil
        }
    }

    public func choice(_ node: Node?, _ path: String, among choices: [String]) -> String? {
        guard let text = string(node, path) else { return nil }
        guard choices.contains(text) else {
            let hint = suggestion(for: text, among: choices).map { ": did you mean \"\($0)\"?" } ?? ""
            report(node, path, "\"\(echoed(text))\" is not one of \(choices.joined(separator: ", "))\(hint)")
            return nil
        }
        return text
    }

    public func sequence(_ node: Node?, _ path: String) -> [Node]? {
        guard let node else { return nil }
        guard case .sequence(let sequence) = node else {
            report(node, path, "expected a list, got \(describe(node))")
            return nil
        }
        return Array(sequence)
    }

    public func stringList(_ node: Node?, _ path: String) -> [String]? {
        guard let items = sequence(node, path) else { return nil }
        let values = items.enumerated().map { string($1, "\(path)[\($0)]") }
        return values.contains(where: { $0 == nil }) ? nil : values.compactMap { $0 }
    }

    public func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): "\"\(echoed(scalar.string))\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    public func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }

    /// The allowed word closest to `word`, if it is close enough to be a likely typo.
    public func suggestion(for word: String, among candidates: [String]) -> String? {
        // A word much longer than every candidate is no typo of one, and would cost its length squared.
        guard word.count <= 2 * (candidates.map(\.count).max() ?? 0) + 4 else { return nil }
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return best.1 <= max(2, word.count / 3) ? best.0 : nil
    }

    private func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var previous = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in 1...max(b.count, 1) where !b.isEmpty {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return a.isEmpty ? b.count : previous[b.count]
    }
}
