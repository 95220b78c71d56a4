import DurableFiles
import Foundation
import StrictYAML
import Subprocess
import TextSafety

#if canImport(System)
    import System
#else
    import SystemPackage
    import OrchestratorSupport
#endif

/// Runs an argument vector as a child process in a session of its own: no shell, output to a
/// log file, and a timeout or a cancellation of the calling task that ends the child's whole
/// process group (SIGTERM, then SIGKILL after `grace`).
enum CommandRunner {
    struct Outcome: Sendable {
        /// nil when the command was stopped by the timeout.
        var exitStatus: Int32?
        var signalled: Bool
        var timedOut: Bool
        /// The child's pid, nil when it never started (or ran in a container).
        var pid: Int32? = nil
    }

    /// - Parameters:
    ///   - outputPath: where standard output goes (default: the log, with standard error).
    ///   - onStart: called with the child's pid once it runs (to track it in the run's state).
    static func run(
        _ argv: [String],
        environment: [String: String],
        workingDirectory: String,
        logPath: String,
        outputPath: String? = nil,
        timeout: Duration?,
        grace: Duration = .seconds(5),
        onStart: @escaping @Sendable (Int32) async -> Void = { _ in }
    ) async throws -> Outcome {
        guard let program = argv.first else { throw OrchestratorError(.invalidInput, "empty argument vector") }
        try AtomicFile.createFolder(URL(fileURLWithPath: logPath).deletingLastPathComponent().path)
        let log = try FileDescriptor.open(
            FilePath(logPath), .writeOnly, options: [.create, .append, .closeOnExec],
            permissions: [.ownerReadWrite, .groupRead, .otherRead])
        defer { try? log.close() }
        let output = try outputPath.map {
            try FileDescriptor.open(
                FilePath($0), .writeOnly, options: [.create, .truncate, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
        defer { try? output?.close() }
        let executable: Executable =
            program.contains("/") ? .path(FilePath(resolvePath(program, in: workingDirectory))) : .name(program)
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: grace)]
        let configuration = Configuration(
            executable: executable,
            arguments: Arguments(Array(argv.dropFirst())),
            environment: .inherit.updating(
                Dictionary(
                    environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) },
                    uniquingKeysWith: { _, last in last })),
            workingDirectory: FilePath(workingDirectory),
            platformOptions: options
        )
        return try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                let result = try await Subprocess.run(
                    configuration, input: .none,
                    output: .fileDescriptor(output ?? log, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(log, closeAfterSpawningProcess: false)
                ) { execution in
                    let pid = execution.processIdentifier.value
                    await onStart(pid)
                    return pid
                }
                switch result.terminationStatus {
                case .exited(let code):
                    return Outcome(
                        exitStatus: code, signalled: false, timedOut: false, pid: result.processIdentifier.value)
                case .signaled(let signal):
                    return Outcome(
                        exitStatus: 128 + signal, signalled: true, timedOut: false, pid: result.processIdentifier.value)
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
        program.hasPrefix("/")
            ? program : URL(fileURLWithPath: directory).appendingPathComponent(program).standardizedFileURL.path
    }
}
