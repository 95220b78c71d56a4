import DurableFiles
public import EngineAPI
import Foundation
import HTTPTransport
import OrchestratorSupport
public import PipelineSchema
public import Provenance
import RecEngineContract
public import Traffic

/// The colours as Docker Swarm services spread over several hosts, driven over the Engine API of
/// a manager (`deploy.swarm.host`). Each colour is the service `SERVICE_COLOR` with `replicas`
/// tasks, labelled as `docker stack` would (`com.docker.stack.namespace`) and with ours
/// (`orchestrate.*`); nginx on this machine sends each colour's share to every running task at
/// `node address:published port`.
///
/// The model travels as an image: on every node's engine (`deploy.swarm.engines`) the engine's
/// own builder makes `localhost/recengine-model:DIGEST` from the base image and `COPY model
/// /model`, so only the model's bytes travel, the image is immutable and named by what it
/// serves, and a rollback finds it on every node even after its service was removed. (A volume
/// would have to be filled on each node by a helper container and could be changed afterwards.)
///
/// Restarts of failed tasks, rescheduling after a lost node and the order of a rolling update
/// are Swarm's (`update_config`, `rollback_config`); health is the controller's own probe of every
/// task.
public struct SwarmRuntime: DeploymentRuntime {
    public var manager: DockerEngine
    /// Every node's engine, to build the model image on.
    public var engines: [DockerEngine]
    public var spec: SwarmSpec
    public var project: String
    /// `<state>/models/<sha256>/`: the content-addressed copies the images are built from.
    public var stateFolder: String
    public var serveArguments: [String]

    public init(
        manager: DockerEngine, engines: [DockerEngine], spec: SwarmSpec, project: String, stateFolder: String,
        serveArguments: [String]
    ) {
        self.manager = manager
        self.engines = engines
        self.spec = spec
        self.project = project
        self.stateFolder = stateFolder
        self.serveArguments = serveArguments
    }

    public var name: String { "swarm" }
    public var models: ModelStore { ModelStore(folder: stateFolder + "/models") }
    public var loadBalancer: any NginxHost { LocalNginx() }
    public var instancesMove: Bool { true }
    public var minimumHealthyInstances: Int { spec.minHealthyReplicas }

    /// The port each task of the server listens on inside its container.
    static let containerPort = 8080

    func serviceName(_ color: String) -> String { "\(project)_\(color)" }

    func labels(color: String) -> [String: String] {
        ["com.docker.stack.namespace": project, "orchestrate.service": project, "orchestrate.color": color]
    }

    /// The image that serves a model on the base image: named by both, so another base image or
    /// model is another image.
    func modelImage(sha256: String) -> String {
        let both = sha256Hex(Data((spec.image + "\n" + sha256).utf8))
        return "localhost/recengine-model:\(both.prefix(24))"
    }

    // MARK: Checks

    /// The manager answers and is a manager, every node that can run tasks has an engine listed to
    /// receive the model image, and the base image is on each of them.
    public func preflight(colors: [String], loadBalancer: Bool) async throws {
        let nginx = LocalNginx()
        if loadBalancer && !nginx.isInstalled {
            throw OrchestratorError(
                .unreachable, "nginx is not installed (looked for \(nginx.nginx)); nothing was changed",
                hint: "apt-get install nginx")
        }
        let membership: DockerEngine.SwarmMembership
        do {
            membership = try await manager.swarmMembership()
        } catch {
            throw OrchestratorError(
                .unreachable,
                "the swarm manager's engine at \(manager.host) is unreachable: \(error); nothing was changed",
                hint: "start it, or point deploy.swarm.host (or DOCKER_HOST) at a manager")
        }
        guard membership.state == "active", membership.isManager else {
            throw OrchestratorError(
                .unreachable,
                "the engine at \(manager.host) is not a swarm manager (swarm state \(membership.state)); nothing was changed",
                hint: "docker swarm init on it, or point deploy.swarm.host at a manager")
        }
        let reachable = try await nodeEngines()
        let nodes = try await manager.nodes()
        for node in nodes where node.isReady && node.availability == "active" && reachable[node.id] == nil {
            throw OrchestratorError(
                .unreachable,
                "swarm node \(node.hostname) (\(node.address)) can run tasks but no engine in deploy.swarm.engines reaches it; nothing was changed",
                hint:
                    "add its engine (e.g. tcp://\(node.address):2376) to deploy.swarm.engines, or drain it: docker node update --availability drain \(node.hostname)"
            )
        }
        for (nodeID, engine) in reachable where !(try await engine.imageExists(spec.image)) {
            let node = nodes.first { $0.id == nodeID }
            throw OrchestratorError(
                .unreachable,
                "the image \(spec.image) is missing on swarm node \(node?.hostname ?? nodeID) (\(engine.host)); nothing was changed",
                hint: "import it on every node: DOCKER_HOST=\(engine.host) orchestrate image import recengine")
        }
    }

    /// The engines of `deploy.swarm.engines` that answer, by the node id they have in the swarm.
    func nodeEngines() async throws -> [String: DockerEngine] {
        await withTaskGroup(of: (String, DockerEngine)?.self) { group in
            for engine in engines {
                group.addTask {
                    guard let membership = try? await engine.swarmMembership(), membership.state == "active" else {
                        return nil
                    }
                    return (membership.nodeID, engine)
                }
            }
            var found: [String: DockerEngine] = [:]
            for await entry in group {
                if let (id, engine) = entry { found[id] = engine }
            }
            return found
        }
    }

    public func plannedContainers(target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer] {
        [
            RunPlan.PlannedContainer(
                name: "\(serviceName(target)) (swarm service, \(spec.replicas) replicas)",
                image: "localhost/recengine-model:<digest> (FROM \(spec.image))",
                command: command(color: target), binds: [],
                network:
                    "\(spec.publish.rawValue) publishing (auto: the routing mesh where it works), port \(spec.ports[target] ?? 0) on every node",
                labels: labels(color: target))
        ]
    }

    func command(color: String) -> [String] {
        [
            "recengine", "serve", "--model", "/model", "--host", "0.0.0.0", "--port", String(Self.containerPort),
            "--color", color,
        ] + serveArguments
    }

    // MARK: Deploying

    public func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance {
        let (modelPath, sha256, _) = try models.store(modelDirectory: modelDirectory)
        let version = (try? ModelIdentity.read(modelDirectory: modelPath))?.displayVersion ?? String(sha256.prefix(12))
        let image = modelImage(sha256: sha256)
        try await shipModelImage(image, modelPath: modelPath, sha256: sha256)
        var serviceLabels = labels(color: color)
        serviceLabels["orchestrate.model.sha256"] = sha256
        serviceLabels["orchestrate.model.version"] = version
        let (publishMode, checkMesh) = try await choosePublishMode()
        let body = serviceSpec(color: color, image: image, labels: serviceLabels, publishMode: publishMode)
        do {
            if let existing = try await service(of: color) {
                var updated = body
                // A new spec replaces the tasks the Swarm way: one at a time, stop first (a
                // host-mode port is free only once the old task stopped).
                updated.taskTemplate.forceUpdate = existing.forceUpdate + 1
                try await manager.updateService(existing.id, version: existing.version, spec: updated)
            } else {
                // Created to its end even when the release is cancelled meanwhile, so that the
                // stop that follows finds the service (never one created behind its back).
                let spec = body
                let manager = manager
                _ = try await completing { try await manager.createService(spec) }
            }
        } catch let error as DockerError {
            throw OrchestratorError(
                .stageFailed, "the \(color) service could not be created on the swarm: \(error)", cause: error)
        }
        let instance = try await waitForTasks(color: color, image: image, sha256: sha256, timeout: timeout)
        guard checkMesh else { return instance }
        // publish: auto on a swarm not checked yet: does every node answer for the tasks?
        let nodes = try await manager.nodes().filter(\.isReady)
        var refused: [String] = []
        for node in nodes {
            let url = "http://\(node.address):\(spec.ports[color] ?? 0)/health"
            if (try? await HTTPClient.get(url, limit: HealthProbe.answerLimit, timeout: .seconds(3)))?.status != 200 {
                refused.append(node.hostname)
            }
        }
        let membership = try await manager.swarmMembership()
        let verdict = RoutingMesh(
            clusterID: membership.clusterID, works: refused.isEmpty, checkedOn: Date(),
            detail: refused.isEmpty
                ? "every node answered for the tasks"
                : "node \(refused.joined(separator: ", ")) did not answer on the published port (no IPVS in its kernel?)"
        )
        try? AtomicFile.write(try Self.meshEncoder.encode(verdict), to: meshPath)
        if verdict.works { return instance }
        // The routing mesh does not work here: publish on each task's own node instead.
        guard let service = try await service(of: color) else { return instance }
        var hostMode = serviceSpec(color: color, image: image, labels: serviceLabels, publishMode: "host")
        hostMode.taskTemplate.forceUpdate = 1
        do {
            try await manager.updateService(service.id, version: service.version, spec: hostMode)
        } catch let error as DockerError {
            throw OrchestratorError(
                .stageFailed, "the \(color) service could not change to host-mode publishing: \(error)", cause: error)
        }
        _ = try await poll(every: .milliseconds(250), for: timeout) { () async -> Bool? in
            (try? await self.service(of: color))?.publishMode == "host" ? true : nil
        }
        return try await waitForTasks(color: color, image: image, sha256: sha256, timeout: timeout)
    }

    /// What a `publish: auto` check found on a swarm.
    struct RoutingMesh: Codable {
        var clusterID: String
        var works: Bool
        var checkedOn: Date
        var detail: String
    }

    var meshPath: String { stateFolder + "/routing-mesh.json" }

    static var meshEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    static var meshDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// What the last `publish: auto` check found, whichever swarm it was on (nil: none, or a
    /// file that does not read, which the next check writes again).
    func recordedRoutingMesh() -> RoutingMesh? {
        FileManager.default.contents(atPath: meshPath).flatMap {
            try? Self.meshDecoder.decode(RoutingMesh.self, from: $0)
        }
    }

    /// What the check found on this swarm.
    func routingMesh() async -> RoutingMesh? {
        guard let mesh = recordedRoutingMesh(), let membership = try? await manager.swarmMembership(),
            membership.clusterID == mesh.clusterID
        else { return nil }
        return mesh
    }

    /// `host` or `ingress`, and whether the routing mesh is yet to be checked on this swarm.
    func choosePublishMode() async throws -> (String, Bool) {
        switch spec.publish {
        case .host: return ("host", false)
        case .ingress: return ("ingress", false)
        case .auto:
            guard let mesh = await routingMesh() else { return ("ingress", true) }
            return (mesh.works ? "ingress" : "host", false)
        }
    }

    /// Builds the model image on every node that lacks it, at the same time.
    func shipModelImage(_ image: String, modelPath: String, sha256: String) async throws {
        let reachable = try await nodeEngines()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for engine in reachable.values {
                group.addTask {
                    if try await engine.imageExists(image) { return }
                    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
                        "orchestrate-model-\(UUID().uuidString)"
                    ).path
                    defer { try? FileManager.default.removeItem(atPath: folder) }
                    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
                    try FileManager.default.copyItem(atPath: modelPath, toPath: folder + "/model")
                    try Data("FROM \(spec.image)\nCOPY model /model\n".utf8).write(
                        to: URL(fileURLWithPath: folder + "/Dockerfile"))
                    do {
                        try await engine.buildImage(
                            context: folder, tag: image,
                            labels: ["orchestrate.model.sha256": sha256, "orchestrate.base-image": spec.image])
                    } catch let error as DockerError {
                        throw OrchestratorError(
                            .stageFailed, "the model image could not be built on \(engine.host): \(error)", cause: error
                        )
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The Engine API service spec of a colour.
    func serviceSpec(color: String, image: String, labels: [String: String], publishMode: String) -> ServiceSpec {
        let seconds: Int64 = 1_000_000_000
        return ServiceSpec(
            name: serviceName(color), labels: labels,
            taskTemplate: .init(
                containerSpec: .init(
                    image: image, command: command(color: color), labels: labels, init: true,
                    stopGracePeriod: 10 * seconds),
                // A host-mode port can be taken by one task per node.
                placement: .init(
                    constraints: spec.constraints, spread: spec.spread,
                    maxReplicas: publishMode == "host" ? 1 : spec.maxReplicasPerNode),
                restartPolicy: .init(condition: "any", delay: 1 * seconds, maxAttempts: 0)),
            mode: .init(replicas: spec.replicas),
            updateConfig: .init(
                parallelism: 1, delay: 1 * seconds, failureAction: "rollback", monitor: 5 * seconds, order: "stop-first"
            ),
            rollbackConfig: .init(
                parallelism: 1, delay: 1 * seconds, failureAction: "pause", monitor: 5 * seconds, order: "stop-first"),
            endpointSpec: .init(
                mode: "vip",
                ports: [
                    .init(
                        protocol: "tcp", targetPort: Self.containerPort, publishedPort: spec.ports[color] ?? 0,
                        publishMode: publishMode)
                ]))
    }

    /// Waits until every replica runs the image (or, at the timeout, at least `minHealthyReplicas`
    /// do); a task that keeps failing ends the wait with its message and the service's logs.
    func waitForTasks(color: String, image: String, sha256: String, timeout: Duration) async throws -> ColorInstance {
        var lastRunning = 0
        var lastProblem = ""
        let ready = try await poll(every: .milliseconds(250), for: timeout) { () async throws -> ColorInstance? in
            guard let service = try await service(of: color) else { return nil }
            let tasks = try await manager.tasks(service: service.id).filter { $0.image == image }
            let running = tasks.filter { $0.desiredState == "running" && $0.state == "running" }
            lastRunning = running.count
            let failed = tasks.filter { ["failed", "rejected"].contains($0.state) }
            if let last = failed.last { lastProblem = "\(last.state): \(last.message)" }
            if failed.count >= max(3, spec.replicas * 2) && running.isEmpty {
                throw OrchestratorError(
                    .stageFailed,
                    "the \(color) service's tasks keep failing (\(failed.count) so far; last \(lastProblem))\(indented(await logTail(of: color)))"
                )
            }
            guard running.count >= spec.replicas, let instance = await instance(of: color),
                instance.modelSHA256 == sha256
            else { return nil }
            return instance
        }
        if let ready { return ready }
        if lastRunning >= spec.minHealthyReplicas, let instance = await instance(of: color),
            instance.modelSHA256 == sha256
        {
            return instance
        }
        throw OrchestratorError(
            .stageFailed,
            "the \(color) service has \(lastRunning) of \(spec.replicas) tasks running after \(timeout) (minHealthyReplicas \(spec.minHealthyReplicas))"
                + (lastProblem.isEmpty ? "" : "; last task problem: \(lastProblem)")
                + indented(await logTail(of: color)))
    }

    // MARK: What runs

    func service(of color: String) async throws -> DockerEngine.ServiceSummary? {
        try await manager.services(labels: labels(color: color)).first { $0.name == serviceName(color) }
    }

    /// The colour's running tasks at `node address:published port` (every ready node under the
    /// routing mesh), read in one look at the service, its tasks and the nodes; `placement` says
    /// where they run and how ports are published, for `status`.
    public func instance(of color: String) async -> ColorInstance? {
        guard let service = try? await service(of: color), let sha256 = service.labels["orchestrate.model.sha256"],
            let tasks = try? await manager.tasks(service: service.id), let nodes = try? await manager.nodes()
        else { return nil }
        let port = spec.ports[color] ?? 0
        let running = tasks.filter {
            $0.desiredState == "running" && $0.state == "running" && $0.image == service.image
        }
        let nodeOf = Dictionary(nodes.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var addresses: [String]
        if service.publishMode == "ingress" {
            // Every ready node answers for every task; nginx takes a bounded number of them.
            addresses =
                running.isEmpty
                ? [] : nodes.filter(\.isReady).prefix(TrafficSplit.maximumAddresses).map { "\($0.address):\(port)" }
        } else {
            addresses = running.compactMap { task in
                nodeOf[task.nodeID].map { "\($0.address):\(task.publishedPorts.first ?? port)" }
            }
        }
        addresses.sort()
        guard let first = addresses.first else { return nil }
        let hosts = running.compactMap { nodeOf[$0.nodeID]?.hostname }.sorted()
        var publishing = service.publishMode == "ingress" ? "routing mesh (ingress publishing)" : "host-mode publishing"
        if let checked = recordedRoutingMesh(), !checked.works {
            publishing +=
                " (routing mesh unavailable: \(checked.detail), checked \(checked.checkedOn.formatted(.iso8601)))"
        }
        var instance = ColorInstance(
            color: color, pid: nil, address: first, addresses: addresses, modelSHA256: sha256,
            modelVersion: service.labels["orchestrate.model.version"] ?? String(sha256.prefix(12)),
            modelPath: models.folder + "/" + sha256)
        instance.placement =
            "\(running.count)/\(service.replicas) tasks on \(hosts.joined(separator: ", ")); \(publishing)"
        return instance
    }

    public func canTellWhatRuns() async -> Bool { await manager.ping() }

    /// Removes the colour's service and waits (up to 30 s) until its tasks are gone, so that its
    /// ports are free for the next deploy.
    public func stop(color: String) async throws {
        guard let service = try await service(of: color) else { return }
        try await manager.removeService(service.id)
        _ = try await poll(every: .milliseconds(250), for: .seconds(30)) { () async -> Bool? in
            let tasks = (try? await manager.tasks(service: service.id)) ?? []
            return tasks.isEmpty ? true : nil
        }
    }

    public func logTail(of color: String) async -> String {
        guard let service = try? await service(of: color) else { return "" }
        return (try? await manager.serviceLogs(service.id, lines: 8)) ?? ""
    }
}
