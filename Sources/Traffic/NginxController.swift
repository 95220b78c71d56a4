import Foundation
import HTTPTransport
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Where the nginx that carries the traffic runs: a process on this machine, or a load-balancer
/// container (the Docker runtime). Each way validates a configuration, starts nginx on one,
/// reloads it gracefully and stops it.
public protocol NginxHost: Sendable {
    /// `nginx -t` on the configuration file: nil when it is valid, else what nginx said.
    func check(configPath: String, config: NginxConfig) async throws -> String?
    func isRunning(config: NginxConfig) async -> Bool
    /// Starts nginx on the configuration; throws with what it said when it does not start.
    func start(configPath: String, config: NginxConfig) async throws
    /// Graceful reload (SIGHUP: connections in flight finish on the old workers).
    func reload(config: NginxConfig) async throws
    /// Graceful stop (SIGQUIT).
    func stop(config: NginxConfig) async
}

/// Applies traffic splits to an nginx instance of our own: writes the rendered configuration
/// atomically (temporary file, `nginx -t`, rename), then reloads the running master with SIGHUP
/// (graceful: connections in flight finish on the old workers) or starts nginx when none runs.
/// If validation or reload fails, the previous configuration stays in force.
public struct NginxController: Sendable {
    public var config: NginxConfig
    /// The rendered configuration file.
    public var configPath: String
    public var host: any NginxHost

    public init(config: NginxConfig, configPath: String, host: any NginxHost = LocalNginx()) {
        self.config = config
        self.configPath = configPath
        self.host = host
    }

    /// The split in force according to the active configuration file.
    public func currentSplit() -> TrafficSplit? {
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else { return nil }
        return NginxConfig.readSplit(fromConfiguration: text)
    }

    /// Whether nginx runs.
    public func isRunning() async -> Bool {
        await host.isRunning(config: config)
    }

    /// Renders, validates, installs and activates `split`; returns once nginx answers with it.
    public func apply(_ split: TrafficSplit) async throws {
        let generation = currentGeneration() + 1
        let text = try config.render(split, generation: generation)
        try FileManager.default.createDirectory(atPath: config.runtimeFolder, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: configPath).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let temporary = configPath + ".next"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        if let problem = try await host.check(configPath: temporary, config: config) {
            try? FileManager.default.removeItem(atPath: temporary)
            throw TrafficError("nginx rejected the new configuration; the previous one stays in force:\n\(problem)")
        }
        guard rename(temporary, configPath) == 0 else {
            throw TrafficError("cannot install \(configPath): \(String(cString: strerror(errno)))")
        }
        if await host.isRunning(config: config) {
            try await host.reload(config: config)
        } else {
            try await host.start(configPath: configPath, config: config)
        }
        try await waitForGeneration(generation)
    }

    /// Stops nginx gracefully (SIGQUIT: workers finish their requests).
    public func stop() async {
        await host.stop(config: config)
    }

    /// The last lines nginx logged (a port it could not bind, say), indented for an error message.
    func errorLogTail(lines: Int = 4) -> String {
        guard let text = try? String(contentsOfFile: config.errorLog, encoding: .utf8) else { return "" }
        let tail = text.split(separator: "\n").suffix(lines)
        return tail.isEmpty ? "" : "\n  last lines of \(config.errorLog):\n" + tail.map { "    \($0)" }.joined(separator: "\n")
    }

    func currentGeneration() -> Int {
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8),
            let range = text.range(of: #"return 200 "(\d+)""#, options: .regularExpression)
        else { return 0 }
        return Int(text[range].filter(\.isNumber)) ?? 0
    }

    /// Polls nginx until the workers answer with `generation`, so that a split is in force when
    /// `apply` returns.
    func waitForGeneration(_ generation: Int) async throws {
        let url = "http://\(config.listenAddress):\(config.listenPort)/__orchestrate/generation"
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        var last = "no answer"
        while clock.now < deadline {
            if let response = try? await HTTPClient.get(url, timeout: .seconds(1)), response.status == 200 {
                last = String(decoding: response.body, as: UTF8.self)
                if last == String(generation) { return }
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TrafficError(
            "nginx did not take the new configuration within 10 s (it answers generation \(last), expected \(generation))\(errorLogTail())",
            hint: "see \(config.errorLog)")
    }

}

/// nginx as a process on this machine, found on the usual paths.
public struct LocalNginx: NginxHost {
    public var nginx: String

    public init(nginx: String = LocalNginx.find()) {
        self.nginx = nginx
    }

    public static func find() -> String {
        for candidate in ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx", "/usr/local/nginx/sbin/nginx"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return "nginx"
    }

    public var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: nginx) }

    /// The pid of the running nginx master, if one runs.
    public func masterPID(_ config: NginxConfig) -> Int32? {
        guard let text = try? String(contentsOfFile: config.pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0
        else { return nil }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return stat.contains(") Z ") ? nil : pid
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
            throw TrafficError("nginx did not start:\n\(start.output)", hint: "is port \(config.listenPort) free? see \(config.errorLog)")
        }
    }

    public func reload(config: NginxConfig) async throws {
        guard let master = masterPID(config), kill(master, SIGHUP) == 0 else { throw TrafficError("cannot signal the nginx master") }
    }

    public func stop(config: NginxConfig) async {
        guard let master = masterPID(config) else { return }
        kill(master, SIGQUIT)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while masterPID(config) != nil && clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if let pid = masterPID(config) { kill(pid, SIGKILL) }
    }

    func run(_ arguments: [String], config: NginxConfig) async throws -> (status: Int32, output: String) {
        let result = try await Subprocess.run(
            .path(FilePath(nginx)), arguments: Arguments(["-p", config.runtimeFolder + "/", "-e", config.errorLog] + arguments),
            output: .string(limit: 1 << 16), error: .combinedWithOutput)
        let status: Int32 = if case .exited(let code) = result.terminationStatus { code } else { -1 }
        return (status, result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
