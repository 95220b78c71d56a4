public import DeploymentRuntimes
import DurableFiles
import Foundation
import OrchestratorSupport
public import PipelineSchema
public import Provenance
import StrictYAML

/// The controller's state folder for one service (`<history folder>/state/<service>/`):
///
/// - `current.json`: the live release (`LiveRelease`), written when a release is promoted;
/// - `run.json`: the run in progress (`RunState`), written before every action;
/// - `record.json`: the provenance record of the run in progress, kept apart from `run.json`;
/// - `control`: a pending `abort` or `promote` from another process;
/// - `targets.json`: the Prometheus file_sd targets of the running colours.
///
/// Every write is atomic and durable (`AtomicFile`). A file that exists but cannot be read is an
/// error naming it, never taken for an absent one: guessing "nothing is live" from a truncated
/// `current.json` would release onto the colour that serves.
public struct StateStore: Sendable {
    public var folder: String

    public init(folder: String) {
        self.folder = folder
    }

    /// The state folder of a pipeline: `<history folder>/state/<service>`.
    public init(pipeline: Pipeline) {
        folder = pipeline.stateFolder
    }

    public var livePath: String { folder + "/current.json" }
    public var runPath: String { folder + "/run.json" }
    public var recordPath: String { folder + "/record.json" }
    var controlPath: String { folder + "/control" }
    public var nginxFolder: String { Pipeline.nginxFolder(inStateFolder: folder) }
    public var targetsPath: String { folder + "/targets.json" }

    // MARK: The live release

    /// The live release; nil only when no release was ever promoted (the file does not exist).
    ///
    /// - Throws: `OrchestratorError` `.unreadableState` when the file exists but cannot be read.
    public func live() throws -> LiveRelease? {
        try read(LiveRelease.self, at: livePath, hint: Self.liveHint(livePath))
    }

    public func setLive(_ live: LiveRelease) throws {
        try write(live, to: livePath)
    }

    static func liveHint(_ path: String) -> String {
        "nothing was changed. `orchestrate status PIPELINE` shows what nginx and the colours serve; "
            + "`orchestrate repair PIPELINE` writes \((path as NSString).lastPathComponent) again from them (the unreadable file is kept beside it)"
    }

    // MARK: The run in progress

    /// The interrupted or running run; nil when none.
    ///
    /// - Throws: `OrchestratorError` `.unreadableState` when `run.json` exists but cannot be read.
    public func run() throws -> RunState? {
        try read(
            RunState.self, at: runPath,
            hint: "the next `orchestrate run` or `orchestrate recover` converges without it, from current.json")
    }

    public func saveRun(_ run: RunState) throws {
        try write(run, to: runPath)
    }

    /// The record of the run in progress.
    public func pendingRecord() throws -> ReleaseRecord? {
        try read(
            ReleaseRecord.self, at: recordPath, hint: "recovery records the interrupted release from run.json alone")
    }

    public func savePendingRecord(_ record: ReleaseRecord) throws {
        try write(record, to: recordPath)
    }

    /// Ends the run: its state, record and pending requests are removed (the record is in the
    /// history by then).
    public func finishRun() throws {
        for path in [runPath, recordPath, controlPath] where unlink(path) != 0 && errno != ENOENT {
            throw OrchestratorError(.fileSystem, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        AtomicFile.synchronizeFolder(folder)
    }

    /// Renames an unreadable state file out of the way (`NAME.unreadable-TIME`) and returns the
    /// new path, so that nothing is lost and the next read finds no file.
    public func moveAside(_ path: String) throws -> String {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let target = "\(path).unreadable-\(stamp)"
        guard rename(path, target) == 0 else {
            throw OrchestratorError(.fileSystem, "cannot move \(path) aside: \(String(cString: strerror(errno)))")
        }
        AtomicFile.synchronizeFolder(folder)
        return target
    }

    // MARK: Requests from other processes

    /// Leaves `control` for the run in progress, with who asked (`by`, one line of at most 100
    /// characters) on a second line.
    public func request(_ control: ControlRequest, by: String? = nil) throws {
        let who = by.map { String($0.split(whereSeparator: \.isNewline).joined(separator: " ").prefix(100)) }
        let text = control.rawValue + (who.map { "\nby \($0)" } ?? "")
        do {
            try AtomicFile.write(Data(text.utf8), to: controlPath)
        } catch let error as AtomicFileError {
            throw OrchestratorError.writing(error, what: "the request to the run in progress")
        }
    }

    /// The pending request, consumed; an unreadable one is dropped (it is not a decision).
    public func takeControl() -> ControlRequest? { takeAttributedControl()?.request }

    /// The pending request and who made it (nil: not said), consumed.
    public func takeAttributedControl() -> (request: ControlRequest, by: String?)? {
        guard let data = try? AtomicFile.read(controlPath, limit: 1024) else { return nil }
        unlink(controlPath)
        return Self.parseControl(data)
    }

    /// The pending request, left in place.
    public func peekControl() -> ControlRequest? {
        guard let data = try? AtomicFile.read(controlPath, limit: 1024) else { return nil }
        return Self.parseControl(data)?.request
    }

    /// The request file: the request on its first line, `by NAME` on the second (written since
    /// `approve --by`; a file of one line is a request of nobody said).
    static func parseControl(_ data: Data) -> (request: ControlRequest, by: String?)? {
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard let first = lines.first, let request = ControlRequest(rawValue: first) else { return nil }
        let by = lines.dropFirst().first { $0.hasPrefix("by ") }.map { String($0.dropFirst(3)) }
        return (request, by.flatMap { $0.isEmpty ? nil : $0 })
    }

    // MARK: Prometheus targets

    /// Writes the Prometheus file_sd targets: one entry per running colour, labelled with it.
    public func writeTargets(_ instances: [ColorInstance], service: String) throws {
        struct Target: Encodable {
            var targets: [String]
            var labels: [String: String]
        }
        try write(
            instances.map { Target(targets: $0.addresses, labels: ["color": $0.color, "service": service]) },
            to: targetsPath)
    }

    // MARK: Reading and writing

    private func read<T: Decodable>(_ type: T.Type, at path: String, hint: String) throws -> T? {
        let data: Data
        do {
            guard let contents = try AtomicFile.read(path, limit: 16 << 20) else { return nil }
            data = contents
        } catch let error as AtomicFileError {
            throw OrchestratorError(
                .unreadableState,
                "the state file \(path) cannot be read: \(error.step) failed: \(String(cString: strerror(error.code)))",
                hint: hint, cause: error)
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        decoder.nonConformingFloatDecodingStrategy = NonFiniteNumbers.decoding
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            let what = data.isEmpty ? "it is empty" : "it is not valid (\(data.count) bytes: \(Self.describe(error)))"
            throw OrchestratorError(.unreadableState, "the state file \(path) is unreadable: \(what)", hint: hint)
        }
    }

    private func write(_ value: some Encodable, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        encoder.nonConformingFloatEncodingStrategy = NonFiniteNumbers.encoding
        do {
            try AtomicFile.write(try encoder.encode(value), to: path)
        } catch let error as AtomicFileError {
            throw OrchestratorError.writing(
                error, what: "the controller's state", unchanged: "its previous content is unchanged")
        }
    }

    /// A decoding error in one line, without Foundation's debug noise.
    static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .dataCorrupted(let context)?: "not JSON: \(context.debugDescription)"
        case .keyNotFound(let key, _)?: "no \"\(key.stringValue)\""
        case .typeMismatch(_, let context)?, .valueNotFound(_, let context)?:
            "wrong value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default: "\(error)"
        }
    }
}
