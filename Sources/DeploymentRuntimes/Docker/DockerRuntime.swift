public import EngineAPI
import Foundation
import OrchestratorSupport
public import Provenance
import RecEngineContract
import StrictYAML
public import Traffic

/// The colours as containers of a compose project (`compose/recommender.yml`), driven over the
/// Engine API. Each colour is the compose service of its name, realised with the variables
///
/// - `COLOR`: the colour; `MODEL_DIR`: the model's copy in the content-addressed store, to
///   bind-mount; `STATE_FOLDER`: where `recengine serve --state-file` reports its port and model;
/// - `NGINX_FOLDER`, `NGINX_CONFIG`, `NGINX_CONFIG_FOLDER`: for the load balancer service `lb`.
///
/// Health is probed by the controller itself at the address the server reports (engine
/// healthchecks are not relied on: podman does not run them).
public struct DockerRuntime: DeploymentRuntime {
    public var engine: DockerEngine
    public var composePath: String
    public var project: String
    /// `<state>/`: `models/<sha256>/`, `<color>.json` (written by the server in the container).
    public var stateFolder: String
    public var nginxFolder: String
    public var nginxConfig: String

    public init(
        engine: DockerEngine, composePath: String, project: String, stateFolder: String, nginxFolder: String,
        nginxConfig: String
    ) {
        self.engine = engine
        self.composePath = composePath
        self.project = project
        self.stateFolder = stateFolder
        self.nginxFolder = nginxFolder
        self.nginxConfig = nginxConfig
    }

    public var name: String { "docker" }
    public var models: ModelStore { ModelStore(folder: stateFolder + "/models") }
    public var loadBalancer: any NginxHost { ContainerNginx(runtime: self) }
    func statePath(_ color: String) -> String { "\(stateFolder)/\(color).json" }

    /// The container of a service (a colour, `lb`), found by its compose labels.
    func container(of service: String) async throws -> DockerEngine.ContainerSummary? {
        try await ComposeProject.container(of: service, project: project, engine: engine)
    }

    /// The compose project with the variables for one colour (or the load balancer).
    public func compose(color: String = "", modelDirectory: String = "/nonexistent") throws -> ComposeProject {
        let variables = [
            "COLOR": color, "MODEL_DIR": modelDirectory, "STATE_FOLDER": stateFolder, "NGINX_FOLDER": nginxFolder,
            "NGINX_CONFIG": nginxConfig, "NGINX_CONFIG_FOLDER": (nginxConfig as NSString).deletingLastPathComponent,
        ]
        do {
            return ComposeProject(
                engine: engine, file: try ComposeFile.load(composePath, project: project, variables: variables))
        } catch let error as EngineClientError {
            throw OrchestratorError(.invalidInput, error.message, hint: error.hint)
        }
    }

    /// The target colour (its model as the store's copy, named by the digest it will have once
    /// trained) and the load balancer, as the engine will be asked to create them.
    public func plannedContainers(target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer] {
        let project = try compose(color: target, modelDirectory: stateFolder + "/models/<sha256 of the trained model>")
        return ([target] + (loadBalancer ? ["lb"] : [])).compactMap { name in
            guard let service = project.file.services[name] else { return nil }
            let body = project.createBody(service, hash: project.configHash(service), oneOff: false)
            let host = body["HostConfig"] as? [String: Any] ?? [:]
            return RunPlan.PlannedContainer(
                name: project.containerName(name), image: service.image, command: service.command ?? [],
                binds: host["Binds"] as? [String] ?? [],
                network: host["NetworkMode"] as? String ?? "default", labels: body["Labels"] as? [String: String] ?? [:]
            )
        }
    }

    /// The engine answers and the images the colours and the load balancer use exist.
    public func preflight(colors: [String], loadBalancer: Bool) async throws {
        guard await engine.ping() else {
            throw OrchestratorError(
                .unreachable, "the Docker engine at \(engine.host) is unreachable; nothing was changed",
                hint: "start it, or point DOCKER_HOST / deploy.docker.host at a running one")
        }
        let project = try compose()
        for name in colors + (loadBalancer ? ["lb"] : []) {
            guard let service = project.file.services[name] else {
                throw OrchestratorError(
                    .invalidInput, "\(composePath) has no service \(name)",
                    hint: "the Docker runtime needs a service per colour and lb")
            }
            if !(try await engine.imageExists(service.image)) {
                throw OrchestratorError(
                    .unreachable,
                    "the image \(service.image) of service \(name) is missing on \(engine.host); nothing was changed",
                    hint: "build it (Dockerfile) or import it: orchestrate image import")
            }
        }
    }

    public func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance {
        let (modelPath, sha256, _) = try models.store(modelDirectory: modelDirectory)
        try await stop(color: color)
        let project = try compose(color: color, modelDirectory: modelPath)
        do {
            try Task.checkCancellation()
            _ = try await completing { try await project.up([color]) }
        } catch let error as DockerError {
            throw OrchestratorError(.stageFailed, "the \(color) container could not start: \(error)", cause: error)
        }
        let started = try await poll(every: .milliseconds(100), for: timeout) { () async throws -> ColorInstance? in
            if let instance = await instance(of: color), instance.modelSHA256 == sha256 { return instance }
            if let container = try? await container(of: color), container.hasExited {
                throw OrchestratorError(
                    .stageFailed, "the \(color) container exited at start\(indented(await logTail(of: color)))")
            }
            return nil
        }
        guard let started else {
            throw OrchestratorError(
                .stageFailed,
                "the \(color) container did not start listening within \(timeout)\(indented(await logTail(of: color)))")
        }
        return started
    }

    public func instance(of color: String) async -> ColorInstance? {
        guard let data = FileManager.default.contents(atPath: statePath(color)),
            let state = try? JSONDecoder().decode(ServerState.self, from: data),
            let container = try? await container(of: color), container.isRunning
        else { return nil }
        return ColorInstance(
            color: color, pid: nil, address: "\(hostAddress):\(state.port)", modelSHA256: state.modelSHA256,
            modelVersion: state.modelVersion,
            modelPath: models.folder + "/" + state.modelSHA256)
    }

    /// Where the colours' host networking puts them, as the engine is reached: its tcp host, or
    /// this machine for a unix socket.
    var hostAddress: String {
        guard engine.host.hasPrefix("tcp://"),
            let name = DockerEngine.hostName(of: engine.host.dropFirst("tcp://".count))
        else { return "127.0.0.1" }
        return DockerEngine.isLoopback(name) ? "127.0.0.1" : name
    }

    public func canTellWhatRuns() async -> Bool { await engine.ping() }

    public func stop(color: String) async throws {
        if let container = try await container(of: color) {
            try await engine.stop(container.id, seconds: 10)
            try await engine.remove(container.id)
        }
        try? FileManager.default.removeItem(atPath: statePath(color))
    }

    public func logTail(of color: String) async -> String {
        guard let container = try? await container(of: color) else { return "" }
        return (try? await engine.logs(container.id, lines: 8)) ?? ""
    }
}

/// nginx in the load balancer container (`lb` of the compose file): the configuration and the
/// runtime folder are bind-mounted at the same paths, so the controller reaches the control socket
/// (traffic steps) as a file of this machine; reloads (a changed configuration only) are SIGHUP
/// sent through the engine (the container's init passes it to the nginx master).
public struct ContainerNginx: NginxHost {
    public var runtime: DockerRuntime

    public init(runtime: DockerRuntime) {
        self.runtime = runtime
    }

    /// The paths in the image: this machine's (`orchestrate image import nginx` copies them) or
    /// Debian's (the `Dockerfile`).
    public var modules: NginxModules? { NginxModules.find() ?? .debian }

    func container() async -> DockerEngine.ContainerSummary? {
        try? await runtime.container(of: "lb")
    }

    public func check(configPath: String, config: NginxConfig) async throws -> String? {
        guard let container = await container(), container.isRunning else { return nil }
        let status = try await runtime.engine.exec(
            container.id,
            ["nginx", "-t", "-q", "-p", config.runtimeFolder + "/", "-e", config.errorLog, "-c", configPath])
        return status == 0
            ? nil : "nginx -t exited with \(status) in the load balancer container; see \(config.errorLog)"
    }

    public func isRunning(config: NginxConfig) async -> Bool {
        await container()?.isRunning == true
    }

    public func start(configPath: String, config: NginxConfig) async throws {
        let project = try runtime.compose()
        if let old = try await project.container(of: "lb") { try await runtime.engine.remove(old.id) }
        do {
            try await project.up(["lb"])
        } catch let error as DockerError {
            throw TrafficError("the load balancer container could not start: \(error)", cause: error)
        }
        try await Task.sleep(for: .milliseconds(300))
        if let container = try await project.container(of: "lb"), container.hasExited {
            let logs = (try? await runtime.engine.logs(container.id)) ?? ""
            throw TrafficError(
                "the load balancer container exited at start:\(indented(logs))",
                hint: "is port \(config.listenPort) free?")
        }
    }

    public func reload(config: NginxConfig) async throws {
        guard let container = await container() else { throw TrafficError("the load balancer container is gone") }
        do {
            try await runtime.engine.kill(container.id, signal: "HUP")
        } catch {
            throw TrafficError("cannot reload the load balancer: \(error)", cause: error)
        }
    }

    public func stop(config: NginxConfig) async {
        guard let container = await container() else { return }
        try? await runtime.engine.kill(container.id, signal: "QUIT")
        _ = try? await runtime.engine.wait(container.id, timeout: .seconds(10))
        try? await runtime.engine.remove(container.id)
    }
}
