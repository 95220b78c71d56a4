/// Text that comes from outside the controller (an HTTP answer, a child's output, a file a stage
/// wrote, a record read back) as the controller may print or record it: every character that
/// could act on a terminal or hide what follows (escape sequences and other control characters,
/// bidirectional overrides) written out as `\u{1b}`, and, when it is kept in a record or an
/// error, cut to a bound with a marker that says how much was cut.
///
/// Escaping leaves printable text as it is (backslashes too), so escaping text twice changes
/// nothing: a printer may escape what an adapter already escaped.
public enum OutsideText {
    /// Bytes of a peer's message kept in an error or a record: Prometheus's error, the engine's
    /// message, an answer that is not what was asked for.
    public static let messageLimit = 1_000
    /// Bytes of a child's output kept in an error or a record (the last lines of its log).
    public static let outputLimit = 4_096

    /// Whether line breaks and tabs are kept (a child's output shown as lines) or written out
    /// (a message on one line, a table cell).
    public enum Lines: Sendable {
        case kept, escaped
    }

    /// Which end of a long text is kept: the start of a message, the end of a log.
    public enum End: Sendable {
        case head, tail
    }

    /// `text` with every control character written out (see the type's summary).
    public static func escaped(_ text: some StringProtocol, lines: Lines = .escaped) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars { append(scalar, to: &result, lines: lines) }
        return result
    }

    /// `text` escaped and, when its escaped form is longer than `limit` bytes, cut to them (at
    /// the `end` it keeps) with a marker: `… [10,485,760 more bytes cut]` (or
    /// `[N earlier bytes cut] …` before a tail). Only what is kept is
    /// read, so cutting a text of gigabytes costs no more than cutting one of kilobytes.
    public static func bounded(
        _ text: some StringProtocol, limit: Int, lines: Lines = .escaped, keeping end: End = .head
    ) -> String {
        var pieces: [String] = []
        var keptBytes = 0
        var keptInput = 0
        func take(_ scalar: Unicode.Scalar) -> Bool {
            var piece = ""
            append(scalar, to: &piece, lines: lines)
            guard keptBytes + piece.utf8.count <= limit else { return false }
            keptBytes += piece.utf8.count
            keptInput += UTF8.width(scalar)
            pieces.append(piece)
            return true
        }
        switch end {
        case .head:
            for scalar in text.unicodeScalars {
                guard take(scalar) else { break }
            }
        case .tail:
            for scalar in text.unicodeScalars.reversed() {
                guard take(scalar) else { break }
            }
        }
        let kept = end == .head ? pieces.joined() : pieces.reversed().joined()
        let cut = text.utf8.count - keptInput
        guard cut > 0 else { return kept }
        return end == .head
            ? kept + "… [\(grouped(cut)) more bytes cut]" : "[\(grouped(cut)) earlier bytes cut] …" + kept
    }

    private static func append(_ scalar: Unicode.Scalar, to result: inout String, lines: Lines) {
        switch scalar {
        case "\n" where lines == .kept, "\t" where lines == .kept:
            result.unicodeScalars.append(scalar)
        case "\n": result += "\\n"
        case "\t": result += "\\t"
        case "\r": result += "\\r"
        default:
            if isControl(scalar) {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
    }

    /// C0 and C1 controls and DEL, the bidirectional marks, embeddings, overrides and isolates
    /// (which make a terminal show text in another order than it is), the line and paragraph
    /// separators.
    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0..<0x20, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// 10485760 as "10,485,760".
    static func grouped(_ number: Int) -> String {
        let digits = String(number)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
            result.append(digit)
        }
        return result
    }
}
