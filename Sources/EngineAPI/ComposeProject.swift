import Crypto
import Foundation
import StrictYAML

/// A compose file realised through the Engine API with compose's own names and labels, so that
/// `docker compose ps` on a Docker host lists what we run: containers `PROJECT-SERVICE-1`, the
/// network `PROJECT_default`, and the `com.docker.compose.*` labels. `up` is idempotent: a
/// service whose configuration hash is unchanged and that runs is left alone; a changed one is
/// recreated.
public struct ComposeProject: Sendable {
    public let engine: DockerEngine
    public let file: ComposeFile

    public init(engine: DockerEngine, file: ComposeFile) {
        self.engine = engine
        self.file = file
    }

    public enum Label {
        public static let project = "com.docker.compose.project"
        public static let service = "com.docker.compose.service"
        public static let number = "com.docker.compose.container-number"
        public static let oneOff = "com.docker.compose.oneoff"
        public static let configHash = "com.docker.compose.config-hash"
        public static let workingDirectory = "com.docker.compose.project.working_dir"
        public static let configFiles = "com.docker.compose.project.config_files"
        public static let network = "com.docker.compose.network"
    }

    public enum Change: String, Sendable {
        case created, recreated, started, unchanged
    }

    public func containerName(_ service: String) -> String { "\(file.project)-\(service)-1" }
    public func networkName(_ network: String) -> String { "\(file.project)_\(network)" }

    /// The digest compose compares: the resolved service configuration, canonically encoded.
    public func configHash(_ service: ComposeFile.Service) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(service)) ?? Data()
        return SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// The running (or stopped) container of a service, if any.
    public func container(of service: String) async throws -> DockerEngine.ContainerSummary? {
        try await Self.container(of: service, project: file.project, engine: engine)
    }

    /// A service's container found by its labels alone: no compose file needs to be read.
    public static func container(
        of service: String, project: String, engine: DockerEngine
    ) async throws -> DockerEngine.ContainerSummary? {
        try await engine.containers(labels: [Label.project: project, Label.service: service, Label.oneOff: "False"])
            .first
    }

    /// Creates, recreates or starts the services (all when `services` is nil) and what they
    /// depend on; returns what changed per service.
    @discardableResult
    public func up(_ services: [String]? = nil, progress: (String) -> Void = { _ in }) async throws -> [String: Change]
    {
        var changes: [String: Change] = [:]
        for name in file.startOrder(services ?? Array(file.services.keys)) {
            guard let service = file.services[name] else { continue }
            try await ensureNetworks(service)
            let hash = configHash(service)
            if let existing = try await container(of: name) {
                if existing.labels[Label.configHash] == hash {
                    if !existing.isRunning {
                        try await engine.start(existing.id)
                        changes[name] = .started
                    } else {
                        changes[name] = .unchanged
                    }
                    continue
                }
                progress("\(containerName(name)): its configuration changed; recreating it")
                try await engine.remove(existing.id)
                changes[name] = .recreated
            } else {
                changes[name] = .created
            }
            let id = try await engine.createContainer(
                name: containerName(name), config: createBody(service, hash: hash, oneOff: false))
            do {
                try await engine.start(id)
            } catch let error as DockerError {
                let logs = (try? await engine.logs(id)) ?? ""
                try? await engine.remove(id)
                throw DockerError(
                    status: error.status, operation: "starting \(containerName(name))",
                    message: error.message + Self.logSuffix(logs))
            }
        }
        return changes
    }

    /// Removes the project's containers (one-off ones too) and networks.
    public func down() async throws {
        for container in try await engine.containers(labels: [Label.project: file.project]) {
            try await engine.remove(container.id)
        }
        for network in try await engine.networks(labels: [Label.project: file.project]) {
            try await engine.removeNetwork(network)
        }
    }

    /// Runs `command` once in a new container of `image` with `folder` as the working directory
    /// and it and `mounts` bind-mounted at the same paths (compose's one-off labels), waits for it
    /// (nil status: timed out, the container was killed), and removes it.
    public func runOnce(
        image: String, command: [String], folder: String, mounts: [String] = [], environment: [String: String],
        name: String, timeout: Duration?
    ) async throws -> (status: Int?, logs: String) {
        let binds = Self.outermost([folder] + mounts).map { ComposeFile.Bind(source: $0, target: $0, readOnly: false) }
        // The engine's default bridge: a stage needs no service of the project, and leaves no network behind.
        var service = ComposeFile.Service(
            name: name, image: image, command: command, environment: environment, volumes: binds, initProcess: true)
        service.networkMode = "bridge"
        var body = createBody(service, hash: configHash(service), oneOff: true)
        body["WorkingDir"] = folder
        let containerName = "\(file.project)-\(name)-run-\(UUID().uuidString.prefix(8).lowercased())"
        let id = try await engine.createContainer(name: containerName, config: body)
        do {
            try await engine.start(id)
            var status: Int?
            do {
                status = try await engine.wait(id, timeout: timeout ?? .seconds(86_400 * 7))
            } catch let error as DockerError where error.isUnreachable && timeout != nil {
                status = nil  // the wait timed out
            }
            let logs = (try? await engine.logs(id, lines: 200)) ?? ""
            try await engine.remove(id)
            return (status, logs)
        } catch {
            try? await engine.remove(id)
            throw error
        }
    }

    /// The folders that are not inside another of them.
    static func outermost(_ folders: [String]) -> [String] {
        let unique = Array(Set(folders.map { URL(fileURLWithPath: $0).standardized.path })).sorted()
        return unique.filter { folder in !unique.contains { $0 != folder && folder.hasPrefix($0 + "/") } }
    }

    static func logSuffix(_ logs: String) -> String {
        let lines = logs.split(separator: "\n").suffix(10).joined(separator: "\n")
        return lines.isEmpty ? "" : "\n  last lines of its log:" + indented(lines)
    }

    private func ensureNetworks(_ service: ComposeFile.Service) async throws {
        guard service.networkMode == nil else { return }
        for network in service.networks.isEmpty ? ["default"] : service.networks {
            try await engine.ensureNetwork(
                networkName(network), labels: [Label.project: file.project, Label.network: network])
        }
    }

    /// The Engine API create body for a service.
    public func createBody(_ service: ComposeFile.Service, hash: String, oneOff: Bool) -> [String: Any] {
        var labels = service.labels
        labels[Label.project] = file.project
        labels[Label.service] = service.name
        labels[Label.number] = "1"
        labels[Label.oneOff] = oneOff ? "True" : "False"
        labels[Label.configHash] = hash
        labels[Label.workingDirectory] = (file.path as NSString).deletingLastPathComponent
        labels[Label.configFiles] = file.path
        var hostConfig: [String: Any] = [
            // The same bind twice (two variables naming one folder) is one mount.
            "Binds": service.volumes.map { "\($0.source):\($0.target)\($0.readOnly ? ":ro" : "")" }.reduce(
                into: [String]()
            ) { binds, bind in
                if !binds.contains(bind) { binds.append(bind) }
            },
            "Init": service.initProcess,
        ]
        var body: [String: Any] = [
            "Image": service.image, "Labels": labels,
            "Env": service.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
        ]
        if let command = service.command { body["Cmd"] = command }
        if !service.ports.isEmpty {
            body["ExposedPorts"] = Dictionary(
                uniqueKeysWithValues: service.ports.map { ("\($0.containerPort)/tcp", [String: Any]()) })
            var bindings: [String: [[String: String]]] = [:]
            for port in service.ports {
                bindings["\(port.containerPort)/tcp", default: []].append([
                    "HostIp": port.hostIP ?? "", "HostPort": port.hostPort.map(String.init) ?? "",
                ])
            }
            hostConfig["PortBindings"] = bindings
        }
        if let restart = service.restart { hostConfig["RestartPolicy"] = ["Name": restart] }
        if let mode = service.networkMode {
            hostConfig["NetworkMode"] = mode
        } else {
            let networks = service.networks.isEmpty ? ["default"] : service.networks
            hostConfig["NetworkMode"] = networkName(networks[0])
            body["NetworkingConfig"] = [
                "EndpointsConfig": Dictionary(
                    uniqueKeysWithValues: networks.map {
                        (networkName($0), ["Aliases": [service.name]] as [String: Any])
                    })
            ]
        }
        if let check = service.healthcheck, !check.test.isEmpty {
            var health: [String: Any] = ["Test": check.test]
            if let interval = check.interval.flatMap({ PipelineDuration($0) }) {
                health["Interval"] = Int(interval.milliseconds) * 1_000_000
            }
            if let timeout = check.timeout.flatMap({ PipelineDuration($0) }) {
                health["Timeout"] = Int(timeout.milliseconds) * 1_000_000
            }
            if let retries = check.retries { health["Retries"] = retries }
            body["Healthcheck"] = health
        }
        body["HostConfig"] = hostConfig
        return body
    }
}
