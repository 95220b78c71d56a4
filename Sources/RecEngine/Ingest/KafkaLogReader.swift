import CRdKafka
import Foundation
import RecEngineContract

/// A Kafka topic read through librdkafka. Partitions are assigned explicitly (no group
/// rebalance) at the offsets the ingest store committed; the consumer group's offsets are
/// committed after the store's, so that Kafka's tools show the lag, and are the starting point of
/// a `stream` run on a store that has none yet.
final class KafkaLogReader: LogReader {
    var brokers: String
    var topic: String
    var group: String
    /// Read every partition from its beginning, ignoring committed positions.
    var fromBeginning: Bool
    /// How long to wait for a broker before a run gives up on it.
    var brokerTimeout: Duration
    /// The consumer of the last read, kept to commit the group's offsets afterwards.
    private var consumer: KafkaConsumer?

    init(brokers: String, topic: String, group: String, fromBeginning: Bool, brokerTimeout: Duration) {
        self.brokers = brokers
        self.topic = topic
        self.group = group
        self.fromBeginning = fromBeginning
        self.brokerTimeout = brokerTimeout
    }

    static func positionKey(topic: String, partition: Int32) -> String {
        "kafka:\(topic)/\(partition)"
    }

    func readLines(
        after positions: [String: Int64], limit: Int, deadline: ContinuousClock.Instant,
        handle: (LogLine) throws -> Void
    ) throws -> LogReadResult {
        let consumer = try KafkaConsumer(brokers: brokers, group: group, timeout: brokerTimeout)
        self.consumer = consumer
        let partitions = try consumer.partitions(of: topic, timeout: brokerTimeout)
        var starts: [Int32: Int64] = [:]
        if !fromBeginning {
            let committed = consumer.committedOffsets(topic: topic, partitions: partitions, timeout: brokerTimeout)
            for partition in partitions {
                starts[partition] =
                    positions[Self.positionKey(topic: topic, partition: partition)] ?? committed[partition]
            }
        }
        try consumer.assign(topic: topic, partitions: partitions, offsets: starts)

        var result = LogReadResult(positions: positions)
        var reached: [Int32: Int64] = [:]
        var atEnd = Set<Int32>()
        var taken = 0
        var lastProgress = ContinuousClock.now
        var lastError: String?
        while atEnd.count < partitions.count {
            if limit > 0 && taken >= limit { break }
            if ContinuousClock.now >= deadline { break }
            guard let message = consumer.poll(milliseconds: 100) else {
                // A partition that is caught up reports its end at once; one that neither
                // delivers nor ends has lost its broker.
                if ContinuousClock.now - lastProgress > brokerTimeout {
                    let waiting = partitions.filter { !atEnd.contains($0) }.map(String.init).joined(separator: ", ")
                    result.interruption =
                        "partitions \(waiting) of \(topic) made no progress for \(brokerTimeout)\(lastError.map { " (\($0))" } ?? " (their broker is unreachable)")"
                    break
                }
                continue
            }
            defer { rd_kafka_message_destroy(message) }
            let partition = message.pointee.partition
            switch message.pointee.err {
            case RD_KAFKA_RESP_ERR_NO_ERROR:
                let offset = message.pointee.offset
                var bytes = UnsafeRawBufferPointer(start: message.pointee.payload, count: message.pointee.len)
                // A message is one log line; a trailing newline is tolerated.
                while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
                    bytes = UnsafeRawBufferPointer(rebasing: bytes.dropLast())
                }
                try handle(LogLine(bytes: bytes, key: "\(topic)/\(partition)", offset: offset))
                taken += 1
                reached[partition] = offset + 1
                atEnd.remove(partition)
                lastProgress = .now
                lastError = nil
            case RD_KAFKA_RESP_ERR__PARTITION_EOF:
                atEnd.insert(partition)
                lastProgress = .now
            case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
                throw RecEngineError(
                    .invalidArgument, "the topic \(topic) does not exist on \(brokers)",
                    location: "kafka://\(brokers)/\(topic)",
                    hint: "check the topic name in the ingest source; it is not created for you")
            default:
                lastError = "Kafka: \(String(cString: rd_kafka_err2str(message.pointee.err)))"
            }
        }
        for (partition, offset) in reached {
            result.positions[Self.positionKey(topic: topic, partition: partition)] = offset
        }
        return result
    }

    /// Tells the consumer group how far the store has read, after the store committed it.
    func commitGroupOffsets(_ positions: [String: Int64]) throws {
        guard let consumer else { return }
        var offsets: [Int32: Int64] = [:]
        let prefix = "kafka:\(topic)/"
        for (key, offset) in positions where key.hasPrefix(prefix) {
            if let partition = Int32(key.dropFirst(prefix.count)) { offsets[partition] = offset }
        }
        guard !offsets.isEmpty else { return }
        try consumer.commit(topic: topic, offsets: offsets, timeout: brokerTimeout)
    }
}

/// The librdkafka consumer handle, closed and destroyed with the value.
final class KafkaConsumer {
    private let handle: OpaquePointer
    let brokers: String

    /// `timeout` bounds the waits on an unreachable broker, closing included: the group
    /// coordinator is waited for up to the session timeout (45 s by default).
    init(brokers: String, group: String, timeout: Duration) throws {
        self.brokers = brokers
        let session = max(Int64(1000), timeout.milliseconds)
        let configuration = rd_kafka_conf_new()
        let settings = [
            "bootstrap.servers": brokers, "group.id": group, "enable.auto.commit": "false",
            "enable.auto.offset.store": "false", "enable.partition.eof": "true", "auto.offset.reset": "earliest",
            "allow.auto.create.topics": "false", "socket.connection.setup.timeout.ms": "5000",
            "session.timeout.ms": String(session),
            "heartbeat.interval.ms": String(session / 3), "log_level": "2",
        ]
        var errorText = [CChar](repeating: 0, count: 512)
        for (name, value) in settings
        where rd_kafka_conf_set(configuration, name, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(configuration)
            throw RecEngineError(.invalidArgument, "Kafka setting \(name)=\(value): \(text(errorText))")
        }
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, configuration, &errorText, errorText.count) else {
            throw RecEngineError(
                .invalidArgument, "cannot create a Kafka consumer: \(text(errorText))", location: brokers)
        }
        self.handle = handle
        rd_kafka_poll_set_consumer(handle)
    }

    deinit {
        // No group membership to leave (partitions are assigned, offsets committed explicitly),
        // so the consumer is not closed: closing waits for fetches to a broker that may be gone.
        rd_kafka_destroy_flags(handle, Int32(RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE))
    }

    /// The partition ids of `topic`; throws when the brokers cannot be reached or the topic is
    /// unknown. All topics are listed: asking for one by name lets a broker that auto-creates
    /// topics create it.
    func partitions(of topic: String, timeout: Duration) throws -> [Int32] {
        let metadata = try allTopics(timeout: timeout)
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = (0..<Int(metadata.pointee.topic_cnt)).map { metadata.pointee.topics[$0] }
        guard let entry = topics.first(where: { String(cString: $0.topic) == topic }), entry.partition_cnt > 0 else {
            let known = topics.map { String(cString: $0.topic) }.filter { !$0.hasPrefix("__") }.sorted()
            throw RecEngineError(
                .invalidArgument, "the topic \(topic) does not exist on \(brokers)",
                location: "kafka://\(brokers)/\(topic)",
                hint:
                    "check the topic name in the ingest source (the brokers have: \(known.isEmpty ? "no topics" : known.joined(separator: ", "))); it is not created for you"
            )
        }
        guard entry.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw RecEngineError(
                .unavailable, "Kafka reports for \(topic): \(String(cString: rd_kafka_err2str(entry.err)))",
                location: "kafka://\(brokers)/\(topic)")
        }
        return (0..<Int(entry.partition_cnt)).map { entry.partitions[$0].id }.sorted()
    }

    /// Throws `.unavailable` when no broker answers a metadata request.
    func checkBrokers(timeout: Duration) throws {
        rd_kafka_metadata_destroy(try allTopics(timeout: timeout))
    }

    /// The metadata of every topic (the caller destroys it); throws `.unavailable` when no broker answers.
    private func allTopics(timeout: Duration) throws -> UnsafePointer<rd_kafka_metadata> {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 1, nil, &metadata, Int32(timeout.milliseconds))
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw RecEngineError(
                .unavailable, "cannot reach the Kafka brokers \(brokers): \(String(cString: rd_kafka_err2str(error)))",
                location: "kafka://\(brokers)",
                hint: "check the broker list and that the brokers are up; nothing was consumed")
        }
        return metadata
    }

    /// The group's committed offsets; partitions without one are left out.
    func committedOffsets(topic: String, partitions: [Int32], timeout: Duration) -> [Int32: Int64] {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
        guard rd_kafka_committed(handle, list, Int32(timeout.milliseconds)) == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return [:]
        }
        var offsets: [Int32: Int64] = [:]
        for index in 0..<Int(list.pointee.cnt) where list.pointee.elems[index].offset >= 0 {
            offsets[list.pointee.elems[index].partition] = list.pointee.elems[index].offset
        }
        return offsets
    }

    /// Assigns the partitions, each at its offset or at the beginning.
    func assign(topic: String, partitions: [Int32], offsets: [Int32: Int64]) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            let element = rd_kafka_topic_partition_list_add(list, topic, partition)!
            element.pointee.offset = offsets[partition] ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
        }
        let error = rd_kafka_assign(handle, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw RecEngineError(
                .unavailable, "cannot assign the partitions of \(topic): \(String(cString: rd_kafka_err2str(error)))")
        }
    }

    func poll(milliseconds: Int32) -> UnsafeMutablePointer<rd_kafka_message_t>? {
        rd_kafka_consumer_poll(handle, milliseconds)
    }

    /// Commits the group's offsets, waiting at most `timeout` for the group's coordinator.
    func commit(topic: String, offsets: [Int32: Int64], timeout: Duration) throws {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, topic, partition)!.pointee.offset = offset
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        var error = rd_kafka_commit_queue(handle, list, queue, nil, nil)
        if error == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let event = rd_kafka_queue_poll(queue, Int32(timeout.milliseconds)) {
                error = rd_kafka_event_error(event)
                rd_kafka_event_destroy(event)
            } else {
                error = RD_KAFKA_RESP_ERR__TIMED_OUT
            }
        }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw RecEngineError(
                .unavailable, "cannot commit the group offsets of \(topic): \(String(cString: rd_kafka_err2str(error)))"
            )
        }
    }
}

/// The text in a NUL-terminated C buffer.
private func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

extension Duration {
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
