import TextSafety
public import Yams

/// Bounds on what a pipeline file (and a `--set` value) may make the loader do, so that a hostile
/// or broken file is refused at once instead of taking minutes, gigabytes, or the terminal.
public enum InputLimits {
    /// The largest pipeline file read (1 MiB); the demo's is about 8 KB.
    public static let maxFileBytes = 1 << 20
    /// Nodes of the YAML tree counted with every alias expanded: a "billion laughs" file of a few
    /// hundred bytes expands to 10⁹ nodes, a real pipeline to a few hundred.
    public static let maxExpandedNodes = 100_000
    /// Problems printed by `validate` before "… and N more problems".
    public static let maxReportedIssues = 50
    /// Problems kept at all; past this they are only counted.
    public static let maxCollectedIssues = 1_000
    /// Characters of a value echoed in a message before it is cut to head…tail.
    public static let maxEchoedCharacters = 80
}

/// A value from the input as a message shows it: control characters escaped (so a message
/// cannot rewrite the terminal) and, when long, cut to its head and tail around "…".
public func echoed(_ text: String, limit: Int = InputLimits.maxEchoedCharacters) -> String {
    let escaped = OutsideText.escaped(text)
    guard escaped.count > limit else { return escaped }
    let head = escaped.prefix(limit / 2)
    let tail = escaped.suffix(limit / 2 - 10)
    return "\(head)…\(tail) (\(text.count) characters)"
}

extension Node {
    /// Whether the tree, with every alias expanded, has more than `limit` nodes. Stops counting
    /// at the limit, so it costs at most `limit` steps whatever the tree expands to.
    public func expands(beyond limit: Int) -> Bool {
        var pending: [Node] = [self]
        var count = 0
        while let node = pending.popLast() {
            count += 1
            if count > limit { return true }
            switch node {
            case .scalar, .alias: break
            case .sequence(let sequence): pending.append(contentsOf: sequence)
            case .mapping(let mapping):
                for (key, value) in mapping {
                    pending.append(key)
                    pending.append(value)
                }
            }
        }
        return false
    }
}

/// The 1-based line and column of the first byte that is not UTF-8, or nil when all are.
public func firstInvalidUTF8(in bytes: some Sequence<UInt8>) -> (offset: Int, line: Int, column: Int)? {
    var parser = Unicode.UTF8.ForwardParser()
    var iterator = bytes.makeIterator()
    var offset = 0
    var line = 1
    var lineStart = 0
    while true {
        switch parser.parseScalar(from: &iterator) {
        case .valid(let encoded):
            if encoded.count == 1 && encoded.first == UInt8(ascii: "\n") {
                line += 1
                lineStart = offset + 1
            }
            offset += encoded.count
        case .error:
            return (offset, line, offset - lineStart + 1)
        case .emptyInput:
            return nil
        }
    }
}
