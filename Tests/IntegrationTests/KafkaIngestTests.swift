import EngineAPI
import Foundation
import RecEngine
import RecEngineContract
import StrictYAML
import TestSupport
import Testing

/// The ingest against Kafka brokers: librdkafka's mock cluster, which speaks the Kafka protocol
/// over TCP on loopback (no broker to install), filled by a real producer.
@Suite struct KafkaIngestTests {
    func ingest(
        _ cluster: KafkaMockCluster, topic: String, folder: String, mode: IngestMode = .stream, group: String = "tests",
        bootstrap: String? = nil
    ) -> MovieLogIngest {
        var ingest = MovieLogIngest(
            source: .kafka(brokers: bootstrap ?? cluster.bootstraps, topic: topic), store: folder + "/store",
            output: folder + "/ratings.csv",
            watches: folder + "/watches.csv", mode: mode, group: group, maxDuration: .seconds(30))
        ingest.brokerTimeout = .seconds(3)
        return ingest
    }

    /// Runs an ingest on a thread of its own: a run waits on its brokers for seconds, and blocking
    /// one of the two threads of Swift's pool starves every test beside it (a steady load through
    /// nginx got 6 answers in a 4 s step on CI).
    func run(_ ingest: MovieLogIngest) async throws -> IngestReport {
        try await onOwnThread { try ingest.run() }
    }

    @Test func historicalThenStreamReadsEveryMessageOnce() async throws {
        try await withTemporaryDirectory { folder in
            let cluster = try KafkaMockCluster(brokers: 1)
            cluster.createTopic("movielog2", partitions: 3)
            let ratings = movieLogRatings(users: 1..<31, movies: 25, perUser: 5, seed: 11)
            let lines = MovieLogGenerator(malformedShare: 0.05, seed: 3).lines(for: ratings)
            let cut = lines.count * 2 / 3
            try cluster.produce(Array(lines[..<cut]), topic: "movielog2", partitions: 3)

            let first = try await run(ingest(cluster, topic: "movielog2", folder: folder, mode: .historical))
            #expect(first.lines == cut)
            #expect(first.interruption == nil)
            #expect(first.positions.keys.sorted() == ["kafka:movielog2/0", "kafka:movielog2/1", "kafka:movielog2/2"])

            try cluster.produce(Array(lines[cut...]), topic: "movielog2", partitions: 3)
            let second = try await run(ingest(cluster, topic: "movielog2", folder: folder))
            #expect(second.lines == lines.count - cut, "stream mode reads only what came after the committed position")
            let third = try await run(ingest(cluster, topic: "movielog2", folder: folder))
            #expect(third.lines == 0)

            let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
            #expect(ratingTable(written) == ratingTable(ratings))
            #expect(first.ratingsNew + second.ratingsNew == ratings.count)
            #expect(dataRowCount(folder + "/watches.csv") == expectedCounts(lines).watches)
            #expect(first.rejected + second.rejected > 0)

            // The consumer group's offsets follow the store's: a new store in the same group starts there.
            let fresh = try await run(ingest(cluster, topic: "movielog2", folder: folder + "/other"))
            #expect(fresh.lines == 0)
            let rebuilt = try await run(
                ingest(cluster, topic: "movielog2", folder: folder + "/other", mode: .historical))
            #expect(rebuilt.lines == lines.count)
        }
    }

    @Test func aKillBetweenWriteAndCommitNeitherLosesNorDuplicates() async throws {
        try await withTemporaryDirectory { folder in
            let cluster = try KafkaMockCluster(brokers: 1)
            cluster.createTopic("movielog2", partitions: 2)
            let ratings = movieLogRatings(users: 1..<31, movies: 25, perUser: 5, seed: 11)
            let lines = MovieLogGenerator(malformedShare: 0.05, seed: 8).lines(for: ratings)
            try cluster.produce(lines, topic: "movielog2", partitions: 2)
            let arguments = [
                "ingest", "--source", "kafka://\(cluster.bootstraps)/movielog2", "--store", folder + "/store", "--out",
                folder + "/ratings.csv",
                "--watches", folder + "/watches.csv", "--group", "kill-test", "--max-seconds", "30",
            ]
            let killed = try await runCommand(
                Playground.recengine, arguments,
                environment: try KillAtRename.environment(suffix: "/store/state.json", when: .before))
            #expect(killed.status != 0)
            #expect(!FileManager.default.fileExists(atPath: folder + "/store/state.json"), "nothing was committed")
            let rerun = try await runCommand(Playground.recengine, arguments)
            #expect(rerun.status == 0, "\(rerun.stderr)")
            #expect(rerun.stdout.contains("read \(lines.count) lines"), "\(rerun.stdout)")
            let again = try await runCommand(Playground.recengine, arguments)
            #expect(again.stdout.contains("read 0 lines"), "\(again.stdout)")
            let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
            #expect(written.count == ratings.count)
            #expect(ratingTable(written) == ratingTable(ratings))
            #expect(dataRowCount(folder + "/watches.csv") == expectedCounts(lines).watches)
        }
    }

    @Test func aTopicThatDoesNotExistIsAClearErrorAndCommitsNothing() async throws {
        try await withTemporaryDirectory { folder in
            let cluster = try KafkaMockCluster(brokers: 1)
            cluster.createTopic("movielog2", partitions: 1)
            await #expect {
                try await run(ingest(cluster, topic: "movielog3", folder: folder))
            } throws: { error in
                "\(error)".contains("the topic movielog3 does not exist")
            }
            #expect(!FileManager.default.fileExists(atPath: folder + "/store/state.json"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/ratings.csv"))
        }
    }

    @Test func unreachableBrokersAreAClearError() async throws {
        try await withTemporaryDirectory { folder in
            let port = try freePort()
            var ingest = MovieLogIngest(
                source: .kafka(brokers: "127.0.0.1:\(port)", topic: "movielog2"), store: folder + "/store",
                output: folder + "/r.csv")
            ingest.brokerTimeout = .seconds(2)
            await #expect {
                try await run(ingest)
            } throws: { error in
                (error as? RecEngineError)?.code == .unavailable
                    && "\(error)".contains("cannot reach the Kafka brokers")
            }
        }
    }

    @Test func aPipelineWhoseBrokersAreUnreachableExits4BeforeAnyStage() async throws {
        try await withTemporaryDirectory { folder in
            let port = try freePort()
            try write(
                """
                version: 1
                name: unit
                history: releases/history.jsonl
                stages:
                  - name: ingest
                    uses: ingest
                    with: {source: "kafka://127.0.0.1:\(port)/movielog2", output: data/ratings.csv}
                """, to: folder + "/p.yml")
            let result = try await runCommand(Playground.orchestrate, ["run", folder + "/p.yml"])
            #expect(result.status == 4, "\(result.stderr)")
            #expect(result.stderr.contains("cannot reach the Kafka brokers 127.0.0.1:\(port)"))
            let history = read(folder + "/releases/history.jsonl")
            #expect(history.contains("\"not_run\""))
            #expect(!FileManager.default.fileExists(atPath: folder + "/data/ratings.csv"))
        }
    }

    @Test func aBrokerThatGoesAwayWhileARequestToItIsInFlight() async throws {
        try await withTemporaryDirectory { folder in
            let cluster = try KafkaMockCluster(brokers: 3)
            cluster.createTopic("movielog2", partitions: 3)
            for partition in 0..<3 {
                cluster.setLeader(topic: "movielog2", partition: partition, broker: partition + 1)
            }
            cluster.setGroupCoordinator(group: "mid-run", broker: 1)
            let ratings = movieLogRatings(users: 1..<31, movies: 25, perUser: 5, seed: 11)
            let lines = MovieLogGenerator(malformedShare: 0.05, seed: 12).lines(for: ratings)
            try cluster.produce(lines, topic: "movielog2", partitions: 3)
            // Broker 2, leader of partition 1, answers slowly and then not at all while the run waits for it.
            cluster.setRoundTrip(broker: 2, milliseconds: 2500)
            var ingest = MovieLogIngest(
                source: .kafka(brokers: cluster.address(of: 1), topic: "movielog2"), store: folder + "/store",
                output: folder + "/ratings.csv",
                watches: folder + "/watches.csv", group: "mid-run", maxDuration: .seconds(30))
            ingest.brokerTimeout = .seconds(3)
            let running = Task { [ingest] in try await onOwnThread { try ingest.run() } }
            try await Task.sleep(for: .milliseconds(1200))
            cluster.stopAnswering(broker: 2)
            let partial = try await running.value
            let onPartition1 = lines.indices.filter { $0 % 3 == 1 }.count
            #expect(
                partial.interruption?.contains("partitions 1 of movielog2") == true,
                "\(partial.interruption ?? "no interruption")")
            #expect(partial.lines == lines.count - onPartition1, "partitions 0 and 2 were read and committed")

            // Partition 1 gets a new leader; broker 2 never answers again.
            cluster.setLeader(topic: "movielog2", partition: 1, broker: 3)
            let rest = try await run(ingest)
            #expect(rest.lines == onPartition1)
            let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
            #expect(ratingTable(written) == ratingTable(ratings))
            #expect(dataRowCount(folder + "/watches.csv") == expectedCounts(lines).watches)
        }
    }

    @Test func aPartitionLeaderThatNeverAnswersLeavesItsPartitionForTheNextRun() async throws {
        try await withTemporaryDirectory { folder in
            let cluster = try KafkaMockCluster(brokers: 3)
            cluster.createTopic("movielog2", partitions: 3)
            for partition in 0..<3 {
                cluster.setLeader(topic: "movielog2", partition: partition, broker: partition + 1)
            }
            let ratings = movieLogRatings(users: 1..<31, movies: 25, perUser: 5, seed: 11)
            let lines = MovieLogGenerator(malformedShare: 0.05, seed: 6).lines(for: ratings)
            try cluster.produce(lines, topic: "movielog2", partitions: 3)

            // The leader of partition 1 stops answering before the run reads it. The runs bootstrap
            // from broker 1, the group's coordinator: a reader cannot tell a silent bootstrap
            // broker from a slow one.
            cluster.setGroupCoordinator(group: "tests", broker: 1)
            cluster.stopAnswering(broker: 2)
            let bootstrap = cluster.address(of: 1)
            let partial = try await run(ingest(cluster, topic: "movielog2", folder: folder, bootstrap: bootstrap))
            #expect(
                partial.interruption?.contains("partitions 1 of movielog2") == true,
                "\(partial.interruption ?? "no interruption")")
            #expect(partial.lines > 0 && partial.lines < lines.count)
            #expect(partial.positions["kafka:movielog2/1"] == nil)

            cluster.setLeader(topic: "movielog2", partition: 1, broker: 3)
            let rest = try await run(ingest(cluster, topic: "movielog2", folder: folder, bootstrap: bootstrap))
            #expect(rest.interruption == nil)
            #expect(partial.lines + rest.lines == lines.count, "nothing lost, nothing read twice")
            let written = try RatingsFile.load(path: folder + "/ratings.csv").ratings
            #expect(ratingTable(written) == ratingTable(ratings))
            #expect(dataRowCount(folder + "/watches.csv") == expectedCounts(lines).watches)
        }
    }
}
