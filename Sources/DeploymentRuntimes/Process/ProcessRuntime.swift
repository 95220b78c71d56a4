import DurableFiles
import Foundation
import OrchestratorSupport
public import Provenance
import RecEngineContract
import StrictYAML
import TextSafety
public import Traffic

/// The embedded default runtime: each colour is a detached `recengine serve` process (its own
/// session, a state file with pid and port, a log file, a free port) under the state folder. It
/// outlives `orchestrate` and the next run finds it again through its state file.
public struct ProcessRuntime: DeploymentRuntime {
    /// `<state>/`: `models/<sha256>/` (content-addressed model copies), `<color>.json`, `<color>.log`.
    public var stateFolder: String
    public var recengine: String
    /// Extra arguments for `recengine serve` (e.g. `--fault-rate 0.3` in a drill).
    public var serveArguments: [String]
    public var host: String

    public init(stateFolder: String, recengine: String, serveArguments: [String] = [], host: String = "127.0.0.1") {
        self.stateFolder = stateFolder
        self.recengine = recengine
        self.serveArguments = serveArguments
        self.host = host
    }

    func statePath(_ color: String) -> String { "\(stateFolder)/\(color).json" }
    func logPath(_ color: String) -> String { "\(stateFolder)/\(color).log" }

    public var name: String { "process" }
    public var models: ModelStore { ModelStore(folder: stateFolder + "/models") }
    public var loadBalancer: any NginxHost { LocalNginx() }

    public func preflight(colors: [String], loadBalancer: Bool) async throws {
        let nginx = LocalNginx()
        if loadBalancer && !nginx.isInstalled {
            throw OrchestratorError(
                .unreachable, "nginx is not installed (looked for \(nginx.nginx)); nothing was changed",
                hint: "apt-get install nginx")
        }
        guard FileManager.default.isExecutableFile(atPath: recengine) else {
            throw OrchestratorError(
                .unreachable, "the colours' server \(recengine) is not an executable file; nothing was changed",
                hint: "build it with swift build, or point RECENGINE_BIN at the recengine binary")
        }
    }

    public func plannedContainers(target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer] {
        []
    }

    public func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance {
        let (modelPath, _, _) = try models.store(modelDirectory: modelDirectory)
        try await stop(color: color)
        let state = statePath(color)
        try? FileManager.default.removeItem(atPath: state)
        // The previous process's log is kept as .1, so that what this one says is all the tail shows.
        let log = logPath(color)
        if FileManager.default.fileExists(atPath: log) {
            try? FileManager.default.removeItem(atPath: log + ".1")
            try? FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        }
        let arguments =
            ["serve", "--model", modelPath, "--host", host, "--port", "0", "--color", color, "--state-file", state]
            + serveArguments
        // A deploy cancelled by now (a signal, an abort) starts nothing.
        try Task.checkCancellation()
        let pid = try Self.spawnDetached(recengine, arguments: arguments, log: log)
        do {
            let started = try await poll(every: .milliseconds(50), for: timeout) { () async throws -> ColorInstance? in
                if let instance = await instance(of: color), instance.pid == pid { return instance }
                if !Self.isRunning(pid) {
                    throw OrchestratorError(
                        .stageFailed, "the \(color) server exited at start\(indented(await logTail(of: color)))",
                        hint: "see \(log)")
                }
                return nil
            }
            guard let started else {
                throw OrchestratorError(
                    .stageFailed,
                    "the \(color) server did not start listening within \(timeout)\(indented(await logTail(of: color)))"
                )
            }
            return started
        } catch {
            // A deploy that does not return an instance leaves nothing running: a server still
            // starting when the deploy was cancelled would serve on, unrouted.
            if Self.isRunning(pid) { Self.terminate(pid) }
            throw error
        }
    }

    public func instance(of color: String) async -> ColorInstance? {
        guard let data = FileManager.default.contents(atPath: statePath(color)),
            let state = try? JSONDecoder().decode(ServerState.self, from: data),
            Self.isServer(state.pid, stateFile: statePath(color))
        else { return nil }
        return ColorInstance(
            color: color, pid: state.pid, address: "\(host):\(state.port)", modelSHA256: state.modelSHA256,
            modelVersion: state.modelVersion, modelPath: models.folder + "/" + state.modelSHA256)
    }

    /// Stops the process its state file names and every other process serving that state file:
    /// one started a moment ago has not written it yet (a deploy interrupted at its start, a
    /// controller killed then), and would otherwise run on, unrouted.
    public func stop(color: String) async throws {
        var pids = Set(Self.servers(stateFile: statePath(color)))
        if let data = FileManager.default.contents(atPath: statePath(color)),
            let state = try? JSONDecoder().decode(ServerState.self, from: data),
            Self.isServer(state.pid, stateFile: statePath(color))
        {
            pids.insert(state.pid)
        }
        for pid in pids { kill(pid, SIGTERM) }
        if !pids.isEmpty {
            let stopped = try await poll(every: .milliseconds(50), for: .seconds(10)) {
                pids.contains(where: Self.isRunning) ? nil : true
            }
            if stopped == nil { pids.filter(Self.isRunning).forEach { kill($0, SIGKILL) } }
        }
        try? FileManager.default.removeItem(atPath: statePath(color))
    }

    /// The `recengine serve` processes started with `--state-file stateFile`, from their command
    /// lines in /proc (at most 1 MiB of each is read).
    static func servers(stateFile: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            pid != getpid() && isServer(pid, stateFile: stateFile)
        }
    }

    /// Whether `pid` is a live `recengine serve` of `stateFile`: a pid read from a state file may
    /// have been recycled since its server exited (pids wrap at 32768 here), also by another
    /// colour's or another service's `recengine serve`, which must never be taken for this one,
    /// nor stopped.
    static func isServer(_ pid: Int32, stateFile: String) -> Bool {
        guard pid > 0, let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/cmdline") else { return false }
        defer { try? handle.close() }
        let arguments = ((try? handle.read(upToCount: 1 << 20)) ?? Data()).split(separator: 0).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard arguments.contains("serve"), let flag = arguments.firstIndex(of: "--state-file"),
            flag + 1 < arguments.count
        else { return false }
        return arguments[flag + 1] == stateFile && isRunning(pid)
    }

    public func logTail(of color: String) async -> String {
        OutsideText.tail(ofFile: logPath(color), lines: 8)
    }

    /// A live process that is a `recengine` (not a recycled pid, not a zombie).
    static func isRunning(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        // Reap it if it is our own child that exited, so it does not linger as a zombie.
        _ = waitpid(pid, nil, WNOHANG)
        guard kill(pid, 0) == 0 else { return false }
        let stat = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/stat") ?? Data(), as: UTF8.self)
        if stat.contains(") Z ") { return false }
        let command = String(
            decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self)
        return command.contains("recengine") || command.isEmpty
    }

    static func terminate(_ pid: Int32) {
        kill(pid, SIGTERM)
    }

    /// Starts a process in a session of its own (so it outlives us and our terminal), stdin from
    /// /dev/null, stdout and stderr appended to `log`.
    static func spawnDetached(_ program: String, arguments: [String], log: String) throws -> Int32 {
        try AtomicFile.createFolder(URL(fileURLWithPath: log).deletingLastPathComponent().path)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // glibc's POSIX_SPAWN_SETSID (spawn.h), which Swift does not see without _GNU_SOURCE.
        posix_spawnattr_setflags(&attributes, 0x80)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        // A colour outlives runs: it never carries the marker of a run's children (ProcessTable),
        // even when orchestrate itself was started by a hook.
        let variables = ProcessInfo.processInfo.environment.filter { !ProcessTable.markerVariables.contains($0.key) }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw OrchestratorError(
                .unreachable, "cannot start \(program): \(String(cString: strerror(result)))",
                hint: "build it with swift build, or point RECENGINE_BIN at the recengine binary")
        }
        return pid
    }
}
