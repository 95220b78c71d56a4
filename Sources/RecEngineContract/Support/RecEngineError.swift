/// An error from RecEngine: what went wrong, where, and what to do about it.
public struct RecEngineError: Error, CustomStringConvertible, Sendable {
    /// The kind of failure, stable for programs that react to it.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Sendable {
            case invalidRatings = "invalid-ratings"
            case invalidArgument = "invalid-argument"
            case corruptModel = "corrupt-model"
            case fileSystem = "file-system"
            case unavailable
            case trainingDiverged = "training-diverged"
            case nonFiniteMetric = "non-finite-metric"
            case tooLarge = "too-large"
        }

        private let value: Value

        private init(_ value: Value) {
            self.value = value
        }

        /// A ratings file that cannot be read as ratings (malformed rows, unknown format, empty).
        public static let invalidRatings = Code(.invalidRatings)
        /// A parameter outside its allowed range.
        public static let invalidArgument = Code(.invalidArgument)
        /// A model directory whose files are missing, truncated, altered or inconsistent.
        public static let corruptModel = Code(.corruptModel)
        /// A file that cannot be read or written.
        public static let fileSystem = Code(.fileSystem)
        /// Training whose loss or parameters became NaN or infinite (a learning rate too high).
        public static let trainingDiverged = Code(.trainingDiverged)
        /// An evaluation whose metric came out NaN or infinite: no number to report or gate on.
        public static let nonFiniteMetric = Code(.nonFiniteMetric)
        /// Work that would need more memory than the machine allows (an EASE catalogue too large).
        public static let tooLarge = Code(.tooLarge)
        /// A service (a Kafka broker) that cannot be reached or failed part way.
        public static let unavailable = Code(.unavailable)

        public var description: String { value.rawValue }
    }

    public var code: Code
    /// What is wrong, for a person.
    public var message: String
    /// Where: a file path, with `:line` when one line is to blame.
    public var location: String?
    /// What to do about it.
    public var hint: String?
    /// The error this one reports, kept for programs and logs; the message already says what it means.
    public var cause: (any Error)?

    public init(
        _ code: Code, _ message: String, location: String? = nil, hint: String? = nil, cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.location = location
        self.hint = hint
        self.cause = cause
    }

    public var description: String {
        var text = location.map { "\($0): \(message)" } ?? message
        if let hint {
            text += "\n  hint: \(hint)"
        }
        return text
    }
}
