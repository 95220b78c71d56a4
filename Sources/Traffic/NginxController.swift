import DurableFiles
import Foundation
import HTTPTransport
import TextSafety

/// Where the nginx that carries the traffic runs: a process on this machine, or a load-balancer
/// container (the Docker runtime). Each way validates a configuration, starts nginx on one,
/// reloads it gracefully and stops it. Traffic steps do not go through the host: the controller
/// talks to nginx's control socket in the runtime folder, which both ways share with this machine.
public protocol NginxHost: Sendable {
    /// `nginx -t` on the configuration file: nil when it is valid, else what nginx said.
    func check(configPath: String, config: NginxConfig) async throws -> String?
    func isRunning(config: NginxConfig) async -> Bool
    /// Starts nginx on the configuration; throws with what it said when it does not start.
    func start(configPath: String, config: NginxConfig) async throws
    /// Graceful reload (SIGHUP: connections in flight finish on the old workers).
    func reload(config: NginxConfig) async throws
    /// Graceful stop (SIGQUIT), of orphaned workers too.
    func stop(config: NginxConfig) async
    /// Processes of this configuration that serve without a running master (its workers, after
    /// the master was killed): they hold the port and the control socket, so nginx cannot start
    /// until they are gone, and their split is in force. Empty where the host cannot leave any (a
    /// container's workers end with it).
    func orphanedWorkers(config: NginxConfig) async -> [Int32]
    /// Replaces them with a fresh nginx on the configuration (the split is in the state file).
    func replaceOrphanedWorkers(_ workers: [Int32], configPath: String, config: NginxConfig) async throws
    /// The Lua module and the NDK as that nginx sees them; nil when they are missing.
    var modules: NginxModules? { get }
}

extension NginxHost {
    public var modules: NginxModules? { NginxModules.find() }
    public func orphanedWorkers(config: NginxConfig) async -> [Int32] { [] }
    public func replaceOrphanedWorkers(_ workers: [Int32], configPath: String, config: NginxConfig) async throws {
        try await start(configPath: configPath, config: config)
    }
}

/// Applies traffic splits to an nginx instance of our own without reloading it.
///
/// The configuration is static for a listen address, port and runtime folder: a Lua balancer
/// picks each request's colour from the split in force, which the controller changes with
/// `POST /traffic` on a control socket (`NginxConfig.controlSocket`, never the public port). A
/// reload closes idle keep-alive client connections, and clients that do not retry lose requests;
/// the POST does not. nginx is started (or reloaded) only when it does not run or runs another
/// configuration. Before every change the split is written to the state file, which a starting
/// nginx loads, so an nginx restarted by hand or after a crash serves the last applied split.
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

    /// Where a reported split comes from.
    public enum Source: String, Sendable, Codable {
        /// The running nginx said so on its control socket.
        case nginx
        /// The state file: the last split applied, which nginx loads when it starts; nginx does
        /// not run (or does not answer).
        case stateFile = "state_file"
    }

    /// A split, its generation and where it was read.
    public struct Report: Sendable, Equatable {
        public var state: TrafficState
        public var source: Source
        /// Workers serving without their master (see `NginxHost.orphanedWorkers`); when `source` is
        /// `.nginx` and this is not empty, they answered for the split.
        public var orphanedWorkers: [Int32]

        public init(state: TrafficState, source: Source, orphanedWorkers: [Int32] = []) {
            self.state = state
            self.source = source
            self.orphanedWorkers = orphanedWorkers
        }
    }

    /// The split nginx has in force when it (its master, or workers a killed master left) answers
    /// on its control socket, else the last applied one from the state file (`source` says
    /// which); nil when there is neither.
    public func currentTraffic() async -> Report? {
        let running = await host.isRunning(config: config)
        let orphans = running ? [] : await host.orphanedWorkers(config: config)
        if running || !orphans.isEmpty, let state = try? await control().state {
            return Report(state: state, source: .nginx, orphanedWorkers: orphans)
        }
        return lastApplied().map { Report(state: $0, source: .stateFile, orphanedWorkers: orphans) }
    }

    /// The split of `currentTraffic()`.
    public func currentSplit() async -> TrafficSplit? {
        await currentTraffic()?.state.split
    }

    /// The last split applied, from the state file.
    public func lastApplied() -> TrafficState? {
        guard let text = try? String(contentsOfFile: config.stateFile, encoding: .utf8) else { return nil }
        return try? TrafficState(parsing: text)
    }

    /// Whether nginx runs (its master, or its container).
    public func isRunning() async -> Bool {
        await host.isRunning(config: config)
    }

    /// What `apply` does when the state file cannot be written (a full disk, a read-only folder).
    public enum StateFilePolicy: Sendable {
        /// The split is not applied: traffic never moves to where a restarted nginx would not
        /// send it (moving traffic forward).
        case required
        /// A running nginx takes the split all the same, and `apply` returns why the file was not
        /// written: putting traffic back on an approved colour never waits for a disk.
        case bestEffort
    }

    /// Whether nginx serves: its master runs, or workers a killed master left do.
    public func isServing() async -> Bool {
        if await host.isRunning(config: config) { return true }
        return !(await host.orphanedWorkers(config: config)).isEmpty
    }

    /// Workers that serve without their master (see `NginxHost.orphanedWorkers`).
    public func orphanedWorkers() async -> [Int32] {
        await host.isRunning(config: config) ? [] : await host.orphanedWorkers(config: config)
    }

    /// What `apply` did beyond putting the split in force.
    public struct Applied: Sendable {
        /// The generation now in force.
        public var generation: Int
        /// Why the state file does not hold the split (`.bestEffort` only); nil when it does.
        public var unsaved: TrafficError?
        /// Workers of a killed master that served until this split: they got it first, then made
        /// way for a fresh nginx.
        public var replacedOrphans: [Int32]

        /// What happened to the orphans, for records and logs; nil when there were none.
        public var replacementNote: String? {
            guard !replacedOrphans.isEmpty else { return nil }
            let pids = replacedOrphans.map(String.init).joined(separator: ", ")
            return
                "nginx's master was gone: its orphaned workers (pid \(pids)) got the split first, then stopped; a fresh nginx serves it"
        }
    }

    /// Puts `split` in force and returns once nginx says it is.
    ///
    /// Writes the state file first (atomically), then: nginx not running: renders the
    /// configuration, checks it and starts nginx, which loads the split; running with the same
    /// configuration: `POST /traffic`; running with another one: installs it and reloads. In every
    /// case `GET /traffic` must then answer the new generation.
    ///
    /// Restoring traffic does not depend on one nginx process: when the master was killed and its
    /// workers serve on (they hold the port, so no nginx could start), the split is posted to them
    /// first, so it is in force at once, then they are stopped and a fresh nginx starts with it.
    ///
    /// - Parameter stateFile: whether the split may be applied when its state file cannot be
    ///   written (then an nginx that restarts loads the previous split until the next `apply`).
    /// - Returns: the generation in force, the orphans replaced, and (`.bestEffort` only) why the
    ///   state file does not hold the split.
    /// - Throws: `TrafficError` when the split is invalid, nginx refuses the configuration (the
    ///   previous one stays in force) or does not take the split within 10 s.
    @discardableResult
    public func apply(_ split: TrafficSplit, stateFile policy: StateFilePolicy = .required) async throws -> Applied {
        try split.validate()
        let split = try Self.resolvingHostNames(split)
        let rendering = try config.render()
        try AtomicFile.createFolder(config.runtimeFolder)
        try AtomicFile.createFolder(URL(fileURLWithPath: configPath).deletingLastPathComponent().path)

        let running = await host.isRunning(config: config)
        let orphans = running ? [] : await host.orphanedWorkers(config: config)
        let answer = running || !orphans.isEmpty ? try? await control() : nil
        let generation = max(answer?.state?.generation ?? 0, lastApplied()?.generation ?? 0) + 1
        let state = TrafficState(generation: generation, split: split)
        var unsaved: TrafficError?
        do {
            try Self.writeAtomically(try state.text(), to: config.stateFile)
        } catch let error as TrafficError where policy == .bestEffort && running {
            unsaved = error
        }

        if !running && orphans.isEmpty {
            try await install(rendering)
            // Nothing listens on a socket file left by an nginx killed with its workers; left in
            // place, it would make the new nginx fail to bind. One that still accepts is never
            // removed: whatever answers on it (an nginx the host could not see) keeps it.
            if !SocketHolders.accepts(unixSocketAt: config.controlSocket) {
                try? FileManager.default.removeItem(atPath: config.controlSocket)
            }
            try await host.start(configPath: configPath, config: config)
        } else if !running {
            try await install(rendering)
            // The orphans serve until they are replaced: the split goes to them first (best
            // effort: the fresh nginx loads it from the state file anyway).
            if answer != nil { _ = try? await send(method: "POST", body: try state.text()) }
            try await host.replaceOrphanedWorkers(orphans, configPath: configPath, config: config)
        } else if answer?.configuration != rendering.id, !(await isTakingInstalled(rendering)) {
            try await install(rendering)
            try await host.reload(config: config)
        }
        let inForce = try await waitForConfiguration(rendering.id)
        if inForce != state {
            let response = try await send(method: "POST", body: try state.text())
            guard response.status == 200 else {
                throw TrafficError(
                    "nginx refused the traffic split (\(response.status)): \(OutsideText.bounded(String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines), limit: OutsideText.messageLimit))"
                )
            }
        }
        let confirmed = try await control().state
        guard confirmed == state else {
            throw TrafficError(
                "nginx answers generation \(confirmed?.generation ?? 0) after generation \(generation) was applied\(errorLogTail())",
                hint: "another controller may be applying splits to \(config.controlSocket)")
        }
        return Applied(generation: generation, unsaved: unsaved, replacedOrphans: orphans)
    }

    /// Stops nginx gracefully (SIGQUIT: workers finish their requests).
    public func stop() async {
        await host.stop(config: config)
    }

    /// Writes the configuration next to its place, has nginx check it, then renames it in place.
    func install(_ rendering: NginxConfig.Rendering) async throws {
        let temporary = configPath + ".next"
        try Self.writeAtomically(rendering.text, to: temporary)
        if let problem = try await host.check(configPath: temporary, config: config) {
            try? FileManager.default.removeItem(atPath: temporary)
            throw TrafficError("nginx rejected the new configuration; the previous one stays in force:\n\(problem)")
        }
        guard rename(temporary, configPath) == 0 else {
            throw TrafficError("cannot install \(configPath): \(String(cString: strerror(errno)))")
        }
    }

    /// Polls the control socket until nginx runs the configuration `id` (a started or reloaded
    /// nginx) and returns the split it has in force.
    func waitForConfiguration(_ id: String, timeout: Duration = .seconds(10)) async throws -> TrafficState? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = "no answer on \(config.controlSocket)"
        while clock.now < deadline {
            do {
                let answer = try await control()
                if answer.configuration == id { return answer.state }
                last = "it runs configuration \(answer.configuration)"
            } catch {
                last = "\(error)"
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TrafficError(
            "nginx did not take configuration \(id) within \(timeout) (\(last))\(errorLogTail())",
            hint: "see \(config.errorLog)")
    }

    /// Whether nginx is taking the configuration already installed: just after a reload, a worker
    /// of the previous generation may still answer with the old id for a moment, which is no
    /// reason to reload again.
    func isTakingInstalled(_ rendering: NginxConfig.Rendering) async -> Bool {
        guard (try? String(contentsOfFile: configPath, encoding: .utf8)) == rendering.text else { return false }
        return (try? await waitForConfiguration(rendering.id, timeout: .seconds(2))) != nil
    }

    /// The last lines nginx logged (a port it could not bind, say), indented for an error message.
    func errorLogTail(lines: Int = 4) -> String {
        let tail = OutsideText.tail(ofFile: config.errorLog, lines: lines)
        return tail.isEmpty
            ? ""
            : "\n  last lines of \(config.errorLog):\n"
                + tail.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
    }
}
