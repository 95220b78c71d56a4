import DurableFiles
public import Foundation
import OrchestratorSupport
import StrictYAML

/// An exclusive lock next to the history file, so that two runs of the same pipeline (overlapping
/// cron jobs) never interleave. It is an `flock` on `<history>.lock`: the kernel releases it when
/// the holder exits, even after `kill -9`, so it never goes stale. The file names its holder.
public final class RunLock: Sendable {
    public let path: String
    private let descriptor: Int32

    public struct Holder: Sendable, Codable {

        public init(pid: Int32, user: String, host: String, since: Date, releaseID: String, command: [String]) {
            self.pid = pid
            self.user = user
            self.host = host
            self.since = since
            self.releaseID = releaseID
            self.command = command
        }
        public var pid: Int32
        public var user: String
        public var host: String
        public var since: Date
        public var releaseID: String
        public var command: [String]

        enum CodingKeys: String, CodingKey {
            case pid, user, host, since, command
            case releaseID = "release_id"
        }
    }

    /// Takes the lock, or throws `OrchestratorError` `.locked` naming the holder.
    public init(historyPath: String, holder: Holder) throws {
        path = historyPath + ".lock"
        try AtomicFile.createFolder(URL(fileURLWithPath: path).deletingLastPathComponent().path)
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw OrchestratorError(.fileSystem, "cannot open the lock \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let current = FileManager.default.contents(atPath: path).flatMap {
                try? Self.decoder.decode(Holder.self, from: $0)
            }
            close(descriptor)
            let who =
                current.map {
                    "pid \($0.pid) (\($0.user)@\($0.host)) since \(ISO8601DateFormatter().string(from: $0.since)), release \($0.releaseID)"
                } ?? "another process"
            throw OrchestratorError(
                .locked, "another run holds the lock \(path): \(who)",
                hint: "wait for it to finish; the lock frees itself when that process exits")
        }
        self.descriptor = descriptor
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        if let data = try? encoder.encode(holder) {
            ftruncate(descriptor, 0)
            _ = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Releases the lock.
    public func release() {
        ftruncate(descriptor, 0)
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    private static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
