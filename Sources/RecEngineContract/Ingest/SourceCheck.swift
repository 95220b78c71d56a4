/// What `recengine check-source --output json` prints: whether the movie log source can be
/// reached (Kafka's brokers answer; files and standard input are checked when read), and if not,
/// why and what to do. It exits 4 when the source is unreachable.
public struct SourceCheck: Sendable, Codable, Equatable {
    /// The source as given: a path, `-`, or `kafka://HOST:PORT/TOPIC`.
    public var source: String
    public var reachable: Bool
    /// Why it cannot be reached.
    public var error: String?
    public var hint: String?

    public init(source: String, reachable: Bool, error: String? = nil, hint: String? = nil) {
        self.source = source
        self.reachable = reachable
        self.error = error
        self.hint = hint
    }
}
