import DurableFiles
import Foundation
import HTTPTransport
import Testing

@testable import Orchestrator
@testable import Traffic

/// An error that reports another keeps it as its `cause`, for programs and logs, while its
/// message stays what it was.
@Suite struct ErrorCauseTests {
    @Test func aGateQueryToAnAbsentPrometheusKeepsTheTransportFailure() async throws {
        let port = try freePort()
        let error = await #expect(throws: PrometheusClient.QueryError.self) {
            try await PrometheusClient(baseURL: "http://127.0.0.1:\(port)").query("up")
        }
        #expect(error?.message.hasPrefix("Prometheus unreachable: ") == true, "\(error?.message ?? "")")
        let cause = try #require(error?.cause as? HTTPClient.TransportError)
        #expect(cause.code == .transferFailed)
        #expect(error?.message == "Prometheus unreachable: \(cause)")
    }

    @Test func aConfigurationThatCannotBeWrittenKeepsTheFileSystemError() async throws {
        try await withTemporaryDirectory { folder in
            try write("a file where the folder should be", to: folder + "/blocker")
            let error = #expect(throws: TrafficError.self) {
                try NginxController.writeAtomically("events {}\n", to: folder + "/blocker/nginx.conf")
            }
            let cause = try #require(error?.cause as? AtomicFileError)
            #expect(cause.code == ENOTDIR, "\(cause)")
            #expect(error?.message == "\(cause)")
        }
    }
}
