import TextSafety

/// A problem with what the Engine API client was given (a compose file, an engine address, a
/// program to pack into an image), as opposed to what the engine answered (`DockerError`).
public struct EngineClientError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var hint: String?
    /// The error this one reports, kept for programs and logs; the message already says what it means.
    public var cause: (any Error)?

    public init(_ message: String, hint: String? = nil, cause: (any Error)? = nil) {
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    public var description: String {
        hint.map { "\(message)\n  hint: \($0)" } ?? message
    }
}

/// Text indented by four spaces under a message, one line per line (logs in error messages):
/// escaped, and cut to its last `OutsideText.outputLimit` bytes.
func indented(_ text: String) -> String {
    let text = OutsideText.bounded(text, limit: OutsideText.outputLimit, lines: .kept, keeping: .tail)
    return text.isEmpty ? "" : "\n" + text.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
}
