import Foundation
import EngineAPI
import StrictYAML

/// The controller's state folder for one service: what is live, and the rollout in progress.
///
/// `current.json` names the promoted release and its colour. `rollout.json` holds the release
/// record being built and the phase, written before every action, so that a controller killed
/// at any point leaves enough for the next run to converge and record what happened.
public struct DeploymentState: Sendable {
    public var folder: String

    public init(folder: String) {
        self.folder = folder
    }

    /// The state folder of a pipeline: `<history folder>/state/<service>`.
    public init(pipeline: Pipeline) {
        let base = URL(fileURLWithPath: pipeline.history).deletingLastPathComponent().appendingPathComponent("state")
        folder = base.appendingPathComponent(pipeline.deploy?.service ?? pipeline.name).path
    }

    public struct Current: Sendable, Codable, Equatable {
        public var color: String
        public var releaseID: String
        public var modelSHA256: String
        public var modelVersion: String

        enum CodingKeys: String, CodingKey {
            case color
            case releaseID = "release_id"
            case modelSHA256 = "model_sha256"
            case modelVersion = "model_version"
        }
    }

    public struct InProgress: Sendable, Codable {
        public var pid: Int32
        /// deploying, shifting, promoting, rolling_back.
        public var phase: String
        public var live: String?
        public var target: String
        public var weight: Int
        public var record: ReleaseRecord
    }

    /// Requests to a rollout in progress from another process.
    public enum Control: String, Sendable {
        case abort
        case promote
        case promoteFull = "promote-full"
    }

    var currentPath: String { folder + "/current.json" }
    var rolloutPath: String { folder + "/rollout.json" }
    var controlPath: String { folder + "/control" }
    public var nginxFolder: String { folder + "/nginx" }
    public var targetsPath: String { folder + "/targets.json" }

    public func current() -> Current? {
        read(currentPath)
    }

    public func setCurrent(_ current: Current) throws {
        try write(current, to: currentPath)
    }

    public func inProgress() -> InProgress? {
        read(rolloutPath)
    }

    public func save(_ progress: InProgress) throws {
        try write(progress, to: rolloutPath)
    }

    public func finishRollout() {
        try? FileManager.default.removeItem(atPath: rolloutPath)
        try? FileManager.default.removeItem(atPath: controlPath)
    }

    public func request(_ control: Control) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data(control.rawValue.utf8).write(to: URL(fileURLWithPath: controlPath), options: .atomic)
    }

    /// The pending request, consumed.
    public func takeControl() -> Control? {
        guard let data = FileManager.default.contents(atPath: controlPath) else { return nil }
        try? FileManager.default.removeItem(atPath: controlPath)
        return Control(rawValue: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Writes the Prometheus file_sd targets: one entry per running colour, labelled with it.
    public func writeTargets(_ instances: [ColorInstance], service: String) throws {
        struct Target: Encodable {
            var targets: [String]
            var labels: [String: String]
        }
        let targets = instances.map { Target(targets: [$0.address], labels: ["color": $0.color, "service": service]) }
        try write(targets, to: targetsPath)
    }

    private func read<T: Decodable>(_ path: String) -> T? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(T.self, from: data)
    }

    private func write(_ value: some Encodable, to path: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(value)
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw OrchestratorError(.fileSystem, "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        _ = data.withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
        fsync(descriptor)
        close(descriptor)
        guard rename(temporary, path) == 0 else { throw OrchestratorError(.fileSystem, "cannot replace \(path)") }
    }
}
