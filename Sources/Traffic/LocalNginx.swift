import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// nginx as a process on this machine, found on the usual paths.
public struct LocalNginx: NginxHost {
    public var nginx: String
    /// Whether a fresh nginx that replaces orphaned workers takes their listening sockets over
    /// (the port never closes) where the kernel allows it; false: the orphans stop first and the
    /// fresh nginx binds anew (see `replaceOrphanedWorkers`).
    public var handsOverSockets: Bool

    public init(nginx: String = LocalNginx.find(), handsOverSockets: Bool = true) {
        self.nginx = nginx
        self.handsOverSockets = handsOverSockets
    }

    public static func find() -> String {
        for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx", "/usr/local/nginx/sbin/nginx"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "nginx"
    }

    public var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: nginx) }

    /// The pid of the running nginx master, if one runs: the pid file's, when that process lives
    /// and is nginx (a master killed with kill -9 leaves its pid file, and the pid may be reused).
    public func masterPID(_ config: NginxConfig) -> Int32? {
        guard let text = SocketHolders.read(config.pidFile, limit: 64),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
        else { return nil }
        let stat = SocketHolders.read("/proc/\(pid)/stat", limit: 4096) ?? ""
        guard !stat.contains(") Z "), SocketHolders.isNginx(pid) else { return nil }
        // The pid file outlives a master that was killed, and pids are recycled: the pid is this
        // configuration's master only if it runs with this runtime folder (`-p FOLDER/`, which
        // the master's title repeats), never another service's or another test's nginx.
        let command = SocketHolders.read("/proc/\(pid)/cmdline", limit: 65536) ?? ""
        return command.contains(config.runtimeFolder + "/") ? pid : nil
    }

    public func check(configPath: String, config: NginxConfig) async throws -> String? {
        let check = try await run(["-t", "-q", "-c", configPath], config: config)
        return check.status == 0 ? nil : check.output
    }

    public func isRunning(config: NginxConfig) async -> Bool {
        masterPID(config) != nil
    }

    public func start(configPath: String, config: NginxConfig) async throws {
        let start = try await run(["-c", configPath], config: config)
        guard start.status == 0 else {
            throw TrafficError(
                "nginx did not start:\n\(start.output)",
                hint: "is port \(config.listenPort) free? see \(config.errorLog)")
        }
    }

    public func reload(config: NginxConfig) async throws {
        guard let master = masterPID(config), kill(master, SIGHUP) == 0 else {
            throw TrafficError("cannot signal the nginx master")
        }
    }

    /// Stops the master and its workers, and workers a killed master left behind.
    public func stop(config: NginxConfig) async {
        if let master = masterPID(config) {
            kill(master, SIGQUIT)
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            while masterPID(config) != nil && clock.now < deadline {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if let pid = masterPID(config) { kill(pid, SIGKILL) }
            // Reaped when it was our child (a master started with the sockets of orphaned workers).
            _ = waitpid(master, nil, WNOHANG)
        }
        let orphans = await orphanedWorkers(config: config)
        if !orphans.isEmpty { try? await stopOrphanedWorkers(orphans, config: config) }
    }

    func run(_ arguments: [String], config: NginxConfig) async throws -> (status: Int32, output: String) {
        let result = try await Subprocess.run(
            .path(FilePath(nginx)),
            arguments: Arguments(["-p", config.runtimeFolder + "/", "-e", config.errorLog] + arguments),
            output: .string(limit: 1 << 16), error: .combinedWithOutput)
        let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
        return (status, result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
