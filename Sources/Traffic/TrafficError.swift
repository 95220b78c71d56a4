/// A failure to render, validate or apply a load-balancer configuration.
public struct TrafficError: Error, CustomStringConvertible, Sendable {
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
