import Foundation
import EngineAPI
import StrictYAML
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Runs an argument vector as a child process: no shell, output to a log file, a timeout that
/// ends the child's whole process group (SIGTERM, then SIGKILL after 5 s).
enum CommandRunner {
    struct Outcome: Sendable {
        /// nil when the command was stopped by the timeout.
        var exitStatus: Int32?
        var signalled: Bool
        var timedOut: Bool
    }

    static func run(
        _ argv: [String],
        environment: [String: String],
        workingDirectory: String,
        logPath: String,
        timeout: Duration?
    ) async throws -> Outcome {
        guard let program = argv.first else { throw OrchestratorError(.invalidInput, "empty argument vector") }
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: logPath).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let log = try FileDescriptor.open(
            FilePath(logPath), .writeOnly, options: [.create, .append, .closeOnExec], permissions: [.ownerReadWrite, .groupRead, .otherRead])
        defer { try? log.close() }
        let executable: Executable = program.contains("/") ? .path(FilePath(resolvePath(program, in: workingDirectory))) : .name(program)
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(5))]
        let configuration = Configuration(
            executable: executable,
            arguments: Arguments(Array(argv.dropFirst())),
            environment: .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })),
            workingDirectory: FilePath(workingDirectory),
            platformOptions: options
        )
        return try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                let result = try await Subprocess.run(
                    configuration, input: .none,
                    output: .fileDescriptor(log, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(log, closeAfterSpawningProcess: false))
                switch result.terminationStatus {
                case .exited(let code): return Outcome(exitStatus: code, signalled: false, timedOut: false)
                case .signaled(let signal): return Outcome(exitStatus: 128 + signal, signalled: true, timedOut: false)
                }
            }
            if let timeout {
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
            }
            defer { group.cancelAll() }
            guard let first = try await group.next() else {
                return Outcome(exitStatus: nil, signalled: false, timedOut: true)
            }
            return first ?? Outcome(exitStatus: nil, signalled: false, timedOut: true)
        }
    }

    static func resolvePath(_ program: String, in directory: String) -> String {
        program.hasPrefix("/") ? program : URL(fileURLWithPath: directory).appendingPathComponent(program).standardizedFileURL.path
    }

    /// The last `count` lines of a log, for error messages.
    static func tail(of path: String, lines count: Int = 10) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        let text = String(decoding: data.suffix(8192), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(count + 1).joined(separator: "\n")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
