import Foundation
import Synchronization
import Testing
import Traffic

/// What `NginxController.apply` does with the control socket when its host says nginx does not
/// run: a host can be wrong (an engine that answered late or not at all), and a socket that still
/// accepts belongs to an nginx that serves.
@Suite struct NginxControlSocketTests {
    /// A host that cannot see its nginx: never running, and a start that records whether the
    /// control socket was still there, then fails (nothing to start here).
    final class HostThatCannotSeeItsNginx: NginxHost {
        let socketAtStart = Mutex<Bool?>(nil)

        func check(configPath: String, config: NginxConfig) async throws -> String? { nil }
        func isRunning(config: NginxConfig) async -> Bool { false }
        func start(configPath: String, config: NginxConfig) async throws {
            socketAtStart.withLock { $0 = FileManager.default.fileExists(atPath: config.controlSocket) }
            throw TrafficError("this host starts nothing")
        }
        func reload(config: NginxConfig) async throws {}
        func stop(config: NginxConfig) async {}
    }

    static let split = TrafficSplit(
        mode: .sticky, backends: [.init(color: "blue", address: "127.0.0.1:1", weight: 100)])

    @Test(arguments: [true, false])
    func aControlSocketIsRemovedBeforeAStartOnlyWhenNothingAcceptsOnIt(accepting: Bool) async throws {
        let folder = "/tmp/ncs-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder + "/nginx", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let config = NginxConfig(listenPort: 1, runtimeFolder: folder + "/nginx")
        let listener = try UnixListener(path: config.controlSocket)
        if !accepting { listener.close() }  // the file stays, nothing listens: what a killed nginx leaves
        defer { if accepting { listener.close() } }
        #expect(FileManager.default.fileExists(atPath: config.controlSocket))

        let host = HostThatCannotSeeItsNginx()
        let nginx = NginxController(config: config, configPath: folder + "/nginx.conf", host: host)
        await #expect(throws: TrafficError.self) { try await nginx.apply(Self.split) }
        #expect(
            host.socketAtStart.withLock { $0 } == accepting,
            accepting ? "a socket that accepts is kept" : "a dead socket file is removed")
    }
}

/// A unix socket that listens (and never answers) until closed; its file stays after `close`.
final class UnixListener: Sendable {
    let descriptor: Int32

    init(path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
        guard bound, listen(descriptor, 8) == 0 else {
            throw TrafficError("cannot listen on \(path): \(String(cString: strerror(errno)))")
        }
    }

    func close() {
        Glibc.close(descriptor)
    }
}
