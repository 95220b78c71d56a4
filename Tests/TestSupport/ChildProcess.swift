public import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

// Foundation's Process is not used in tests: its waitUntilExit spins when swift-subprocess,
// which the orchestrator uses in the same process, owns SIGCHLD handling.

/// Runs a command to completion and captures its output.
public func runCommand(_ program: String, _ arguments: [String], environment: [String: String] = [:], in folder: String? = nil) async throws
    -> (status: Int32, stdout: String, stderr: String)
{
    let result = try await Subprocess.run(
        .path(FilePath(program)), arguments: Arguments(arguments),
        environment: .inherit.updating(Dictionary(uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })),
        workingDirectory: folder.map { FilePath($0) }, output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
    let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
    return (status, result.standardOutput, result.standardError)
}

/// A long-running child started with posix_spawn, stopped and reaped explicitly.
public struct ChildProcess: Sendable {
    public let pid: Int32

    /// - Parameter log: where its standard output and error go (default: nowhere).
    public static func spawn(_ program: String, _ arguments: [String], environment: [String: String] = [:], log: String? = nil) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, nil, argv, envp)
        guard result == 0 else { throw ChildProcessError(message: "cannot start \(program): \(String(cString: strerror(result)))") }
        return ChildProcess(pid: pid)
    }

    public func signal(_ signal: Int32) {
        kill(pid, signal)
    }

    /// Waits for the child to exit; returns its wait status and its peak resident memory in
    /// bytes (the kernel's `ru_maxrss`).
    public func waitMeasuringMemory() async -> (status: Int32, peakBytes: Int) {
        await Task.detached {
            var status: Int32 = 0
            var usage = rusage()
            wait4(pid, &status, 0, &usage)
            return (status, usage.ru_maxrss * 1024)
        }.value
    }

    /// Waits for the child to exit, without blocking the cooperative pool.
    public func wait() async -> Int32 {
        await Task.detached {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            return status
        }.value
    }
}

public struct ChildProcessError: Error {
    public var message: String
}

/// Tests that use up loopback ports or need one back run one at a time: librdkafka's mock broker,
/// set down and up again, listens again on the port it had and aborts the whole process when a
/// connection has taken it meanwhile; a flood of a thousand connections takes ephemeral ports by
/// the thousand.
public func withLoopbackPortsToItself<T>(_ body: () async throws -> T) async throws -> T {
    await LoopbackPortsLock.shared.acquire()
    do {
        let result = try await body()
        await LoopbackPortsLock.shared.release()
        return result
    } catch {
        await LoopbackPortsLock.shared.release()
        throw error
    }
}

actor LoopbackPortsLock {
    static let shared = LoopbackPortsLock()
    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
