import CRdKafka
import Foundation

/// librdkafka's mock cluster: real Kafka brokers (the Kafka protocol over TCP on loopback) inside
/// this process, with a producer to fill topics. Brokers are numbered from 1.
public final class KafkaMockCluster: @unchecked Sendable {
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    private let producer: OpaquePointer
    public let bootstraps: String

    public init(brokers: Int = 1) throws {
        var errorText = [CChar](repeating: 0, count: 512)
        let ownerConfiguration = rd_kafka_conf_new()
        rd_kafka_conf_set(ownerConfiguration, "log_level", "2", &errorText, errorText.count)
        guard let owner = rd_kafka_new(RD_KAFKA_PRODUCER, ownerConfiguration, &errorText, errorText.count) else {
            throw ChildProcessError(message: "cannot create the mock cluster's handle")
        }
        guard let cluster = rd_kafka_mock_cluster_new(owner, Int32(brokers)) else {
            rd_kafka_destroy(owner)
            throw ChildProcessError(message: "cannot create the mock cluster")
        }
        self.owner = owner
        self.cluster = cluster
        bootstraps = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        let configuration = rd_kafka_conf_new()
        for (name, value) in ["bootstrap.servers": bootstraps, "log_level": "2", "linger.ms": "5"] {
            rd_kafka_conf_set(configuration, name, value, &errorText, errorText.count)
        }
        guard let producer = rd_kafka_new(RD_KAFKA_PRODUCER, configuration, &errorText, errorText.count) else {
            throw ChildProcessError(message: "cannot create the producer")
        }
        self.producer = producer
    }

    deinit {
        rd_kafka_destroy(producer)
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }

    public func createTopic(_ topic: String, partitions: Int) {
        rd_kafka_mock_topic_create(cluster, topic, Int32(partitions), 1)
    }

    /// Makes `broker` the leader of one partition.
    public func setLeader(topic: String, partition: Int, broker: Int) {
        rd_kafka_mock_partition_set_leader(cluster, topic, Int32(partition), Int32(broker))
    }

    /// Makes a broker stop answering for good: its connections stay open and every request waits
    /// (ten minutes, longer than any test). Not `rd_kafka_mock_broker_set_down`: librdkafka 2.0
    /// closes the downed broker's listening socket and binds its port again at once, and aborts
    /// the whole test process when another test's server took the port in between (seen on CI).
    /// A broker that never answers is the harder case for a reader anyway.
    public func stopAnswering(broker: Int) {
        setRoundTrip(broker: broker, milliseconds: 600_000)
    }

    /// Delays every answer of `broker` by `milliseconds`.
    public func setRoundTrip(broker: Int, milliseconds: Int) {
        rd_kafka_mock_broker_set_rtt(cluster, Int32(broker), Int32(milliseconds))
    }

    /// Makes `broker` the coordinator of a consumer group.
    public func setGroupCoordinator(group: String, broker: Int) {
        rd_kafka_mock_coordinator_set(cluster, "group", group, Int32(broker))
    }

    /// The address of one broker (the bootstrap list is in broker order).
    public func address(of broker: Int) -> String {
        String(bootstraps.split(separator: ",")[broker - 1])
    }

    /// Produces each line as one message, round-robin over the partitions, and waits for delivery.
    public func produce(_ lines: [String], topic: String, partitions: Int) throws {
        guard let handle = rd_kafka_topic_new(producer, topic, nil) else {
            throw ChildProcessError(message: "cannot open topic \(topic)")
        }
        defer { rd_kafka_topic_destroy(handle) }
        for (index, line) in lines.enumerated() {
            var bytes = Array(line.utf8)
            while true {
                let result = bytes.withUnsafeMutableBytes { buffer in
                    rd_kafka_produce(
                        handle, Int32(index % partitions), RD_KAFKA_MSG_F_COPY, buffer.baseAddress, buffer.count, nil,
                        0, nil)
                }
                if result == 0 { break }
                rd_kafka_poll(producer, 10)  // the queue is full: let deliveries drain
            }
        }
        guard rd_kafka_flush(producer, 30_000) == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw ChildProcessError(message: "the mock cluster did not take the messages within 30 s")
        }
    }
}
