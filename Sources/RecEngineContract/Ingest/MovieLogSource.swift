/// Where the movie log is read from.
public enum MovieLogSource: Sendable, Equatable, CustomStringConvertible {
    /// A log file, or a folder whose files (plain, or gzip when named `*.gz`) are read in name order.
    case files(String)
    /// Standard input, read to its end.
    case standardInput
    /// A Kafka topic; `brokers` is the comma-separated bootstrap list.
    case kafka(brokers: String, topic: String)

    /// Reads `-`, `kafka://HOST:PORT[,HOST:PORT...]/TOPIC`, or a path.
    public init(parsing text: String) throws {
        if text == "-" {
            self = .standardInput
        } else if text.hasPrefix("kafka://") {
            let rest = text.dropFirst("kafka://".count)
            guard let slash = rest.firstIndex(of: "/"), !rest[..<slash].isEmpty,
                rest.index(after: slash) < rest.endIndex
            else {
                throw RecEngineError(
                    .invalidArgument, "a Kafka source needs brokers and a topic, got \(text)",
                    hint: "write kafka://HOST:PORT[,HOST:PORT...]/TOPIC, e.g. kafka://localhost:9092/movielog2")
            }
            let topic = String(rest[rest.index(after: slash)...])
            guard topic.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
                topic.count <= 249
            else {
                throw RecEngineError(
                    .invalidArgument, "\"\(topic)\" is not a Kafka topic name",
                    hint: "topic names use letters, digits, . _ and -")
            }
            self = .kafka(brokers: String(rest[..<slash]), topic: topic)
        } else if text.isEmpty {
            throw RecEngineError(
                .invalidArgument, "the log source is empty",
                hint: "give a file, a folder, - (standard input) or kafka://HOST:PORT/TOPIC")
        } else {
            self = .files(text)
        }
    }

    public var description: String {
        switch self {
        case .files(let path): path
        case .standardInput: "-"
        case .kafka(let brokers, let topic): "kafka://\(brokers)/\(topic)"
        }
    }
}

/// `historical` reads the source from its beginning and rebuilds the store; `stream` goes on
/// from the committed position.
public enum IngestMode: String, Sendable, CaseIterable, Codable {
    case historical
    case stream
}
