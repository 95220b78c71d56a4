import CProcessDescriptors
public import Foundation
import Subprocess
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

// Foundation's Process is not used in tests: its waitUntilExit spins when swift-subprocess,
// which the orchestrator uses in the same process, owns SIGCHLD handling.

/// Runs a command to completion and captures its output.
public func runCommand(
    _ program: String, _ arguments: [String], environment: [String: String] = [:], in folder: String? = nil
) async throws
    -> (status: Int32, stdout: String, stderr: String)
{
    let result = try await Subprocess.run(
        .path(FilePath(program)), arguments: Arguments(arguments),
        environment: .inherit.updating(
            Dictionary(
                uniqueKeysWithValues: environment.map { (Environment.Key(stringLiteral: $0.key), Optional($0.value)) })),
        workingDirectory: folder.map { FilePath($0) }, output: .string(limit: 1 << 22), error: .string(limit: 1 << 22))
    let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
    return (status, result.standardOutput, result.standardError)
}

/// A long-running child started with posix_spawn, stopped and reaped explicitly.
///
/// No signal reaches its pid (or its process group) once it has been reaped: by then the number
/// may name another process. pid_max is 32768 here, and tests that signalled a child reaped a
/// moment earlier were the likeliest sender of the signals that ended other tests' servers.
public struct ChildProcess: Sendable {
    public let pid: Int32
    /// Where `PeakMemoryLauncher` writes the child's peak resident memory (KiB) when it ends.
    let peakMemoryFile: String?
    /// The wait status once the child has been reaped; signals are sent under this lock.
    private let reaped: Reaped

    private final class Reaped: Sendable {
        let status = Mutex<Int32?>(nil)
    }

    init(pid: Int32, peakMemoryFile: String? = nil) {
        self.pid = pid
        self.peakMemoryFile = peakMemoryFile
        self.reaped = Reaped()
    }

    /// Whether the child has ended (it may still be a zombie, whose pid no other process can take).
    private var hasEnded: Bool {
        if reaped.status.withLock({ $0 != nil }) { return true }
        var info = siginfo_t()
        let result = waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT)
        return result != 0 || info._sifields._sigchld.si_pid == pid
    }

    /// Reaps the child, which has ended or is about to, and returns its wait status.
    private func reap() -> Int32 {
        reaped.status.withLock { reaped in
            if let reaped { return reaped }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            reaped = status
            return status
        }
    }

    /// Sends `signal` to the child, or with `group` to its process group, unless it has been reaped.
    private func send(_ signal: Int32, group: Bool = false) {
        reaped.status.withLock { reaped in
            if reaped == nil { kill(group ? -pid : pid, signal) }
        }
    }

    /// - Parameters:
    ///   - log: where its standard output goes, and its standard error unless `errors` is given
    ///     (default: nowhere).
    ///   - standardInput: a descriptor for its standard input (default: /dev/null).
    ///   - ownProcessGroup: starts it in a process group of its own, which `stopProcessGroup`
    ///     stops whole (a server and the workers it forks).
    ///   - measuringPeakMemory: starts it through `PeakMemoryLauncher`, so that `waitMeasuringMemory`
    ///     and `exit(killingAfter:)` report its own peak resident memory.
    public static func spawn(
        _ program: String, _ arguments: [String], environment: [String: String] = [:], log: String? = nil,
        errors: String? = nil,
        standardInput: Int32? = nil, ownProcessGroup: Bool = false, measuringPeakMemory: Bool = false
    ) throws -> ChildProcess {
        var peakMemoryFile: String?
        var (program, arguments) = (program, arguments)
        if measuringPeakMemory {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("peak-memory-\(UUID().uuidString)")
                .path
            (program, arguments) = (try PeakMemoryLauncher.path(), [file, program] + arguments)
            peakMemoryFile = file
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if ownProcessGroup {
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
            posix_spawnattr_setpgroup(&attributes, 0)
        }
        // The child would inherit the test runner's mask, in which SIGTERM can be blocked, and
        // outlive the SIGTERM meant to stop it.
        _ = process_spawn_default_signals(&attributes)
        if let standardInput {
            posix_spawn_file_actions_adddup2(&actions, standardInput, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, log ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errors {
            posix_spawn_file_actions_addopen(&actions, 2, errors, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Nothing else of the test process: a socket or pipe another test holds must close when
        // that test closes it, not when this child ends.
        _ = process_spawn_close_from(&actions, 3)
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw ChildProcessError(message: "cannot start \(program): \(String(cString: strerror(result)))")
        }
        return ChildProcess(pid: pid, peakMemoryFile: peakMemoryFile)
    }

    public func signal(_ signal: Int32) {
        send(signal)
    }

    /// Stops a child started with `ownProcessGroup` and everything in its group: SIGTERM, up to
    /// `grace` for the child to exit, then SIGKILL to whatever of the group is left (workers
    /// of a server that did not wait for them), and the child reaped. Killing only the child
    /// would leave its workers running, re-parented to init, on the child's ports. The child is
    /// reaped last: until then its pid, the group's id, cannot name another process.
    public func stopProcessGroup(grace: Duration = .seconds(5)) {
        send(SIGTERM, group: true)
        let clock = ContinuousClock()
        let end = clock.now + grace
        while clock.now < end && !hasEnded {
            usleep(20_000)
        }
        send(SIGKILL, group: true)
        _ = reap()
    }

    /// Waits for the child to exit; returns its wait status and its peak resident memory in bytes
    /// (0 unless it was spawned `measuringPeakMemory`).
    public func waitMeasuringMemory() async -> (status: Int32, peakBytes: Int) {
        let status = await wait()
        return (status, measuredPeakMemory())
    }

    /// The peak resident memory, in bytes, that `PeakMemoryLauncher` wrote when the child ended:
    /// 0 when it was not measured, `Int.max` when the launcher wrote nothing (so that no bound
    /// passes on a measurement that failed).
    func measuredPeakMemory() -> Int {
        guard let peakMemoryFile else { return 0 }
        defer { try? FileManager.default.removeItem(atPath: peakMemoryFile) }
        guard let text = try? String(contentsOfFile: peakMemoryFile, encoding: .utf8),
            let kibibytes = Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return Int.max }
        return kibibytes * 1024
    }

    /// Waits for the child to exit, without blocking the cooperative pool.
    public func wait() async -> Int32 {
        await onOwnThread {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
            return reap()
        }
    }
}

extension ChildProcess {
    /// How a child ended, and the most memory it held.
    public struct Exit: Sendable {
        /// The exit code; nil when a signal ended it.
        public var code: Int32?
        /// Its peak resident memory, in bytes (0 unless it was spawned `measuringPeakMemory`).
        public var peakMemory: Int
        /// Whether it had to be killed at the deadline.
        public var killedAtDeadline: Bool
    }

    /// Waits for the child to exit (without blocking the cooperative pool), killing it after
    /// `deadline` so that a test of something that must not hang cannot hang itself.
    public func exit(killingAfter deadline: Duration) async -> Exit {
        await onOwnThread {
            let clock = ContinuousClock()
            let end = clock.now + deadline
            var killed = false
            while !hasEnded {
                if clock.now >= end && !killed {
                    send(SIGKILL)
                    killed = true
                }
                usleep(20_000)
            }
            let status = reap()
            let signalled = status & 0x7f != 0
            return Exit(
                code: signalled ? nil : (status >> 8) & 0xff, peakMemory: measuredPeakMemory(), killedAtDeadline: killed
            )
        }
    }
}

/// Starts a command and reports its own peak resident memory. The kernel's `ru_maxrss` of a child
/// spawned from the test process counts the test process's memory too (posix_spawn shares the
/// parent's memory until exec, and exec keeps the larger high-water mark), so a bound on it would
/// measure the test runner. This small launcher forks the command from itself instead, forwards
/// SIGTERM, SIGINT and SIGHUP to it, writes the command's `ru_maxrss` (KiB) to a file when it
/// ends and ends the same way; the command is killed when the launcher is (PR_SET_PDEATHSIG).
/// Do not combine with `ownProcessGroup`: a signal to the group would reach the command twice.
enum PeakMemoryLauncher {

    private static let built = Result<String, any Error> {
        try PreloadLibrary.build(name: "peak_memory", executable: true)
    }

    static func path() throws -> String { try built.get() }
}

public struct ChildProcessError: Error {
    public var message: String
}

/// Tests that use up loopback ports run one at a time: a flood of hundreds of connections takes
/// ephemeral ports by the hundred.
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

/// Stops a process with SIGSTOP and returns once every one of its threads is stopped: `kill`
/// returns before a thread running on another core has stopped, and that thread may still answer
/// a request or two.
public func stopProcess(_ pid: Int32) async throws {
    kill(pid, SIGSTOP)
    let folder = "/proc/\(pid)/task"
    for _ in 0..<500 {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        let stopped = threads.allSatisfy { thread in
            let stat = read("\(folder)/\(thread)/stat")
            guard let close = stat.lastIndex(of: ")") else { return true }
            return stat[stat.index(after: close)...].split(separator: " ").first == "T"
        }
        if stopped { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw ChildProcessError(message: "process \(pid) did not stop within 5 s of SIGSTOP")
}
