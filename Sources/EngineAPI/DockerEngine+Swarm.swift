import Foundation
import HTTPTransport
import Subprocess
import TextSafety

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Swarm mode over the same Engine API: services, their tasks, the nodes, and images built on
/// one node's engine (a swarm without a registry needs every image on every node).
extension DockerEngine {
    // MARK: Nodes

    public struct SwarmNode: Sendable, Equatable {
        public var id: String
        public var hostname: String
        /// The address other nodes and the controller reach it at (`Status.Addr`).
        public var address: String
        /// `ready`, `down`, `unknown`, `disconnected`.
        public var state: String
        /// `active`, `pause`, `drain`.
        public var availability: String
        public var role: String
        public var labels: [String: String]

        public var isReady: Bool { state == "ready" }
    }

    /// `GET /nodes` (a manager only).
    public func nodes() async throws -> [SwarmNode] {
        Self.swarmNodes(
            try await call("GET", "/nodes", limit: AnswerLimit.list, operation: "listing the swarm's nodes"))
    }

    /// The nodes of a `GET /nodes` answer; none when it is not a list of objects.
    static func swarmNodes(_ data: Data) -> [SwarmNode] {
        (JSONAnswer.decode([EngineAnswer.Node].self, from: data) ?? []).map { entry in
            var address = entry.address ?? ""
            // A manager may report 0.0.0.0; its manager address has the real one.
            if address.isEmpty || address == "0.0.0.0", let manager = entry.managerAddress {
                address = String(manager.split(separator: ":").first ?? "")
            }
            return SwarmNode(
                id: entry.id ?? "", hostname: entry.hostname ?? "", address: address, state: entry.state ?? "",
                availability: entry.availability ?? "", role: entry.role ?? "", labels: entry.labels ?? [:])
        }
    }

    /// What `GET /info` says of this engine's place in a swarm.
    public struct SwarmMembership: Sendable, Equatable {
        /// `active`, `inactive`, `pending`, `error`, `locked`.
        public var state: String
        public var nodeID: String
        public var isManager: Bool
        public var clusterID: String
    }

    public func swarmMembership() async throws -> SwarmMembership {
        Self.swarmMembership(
            try await call(
                "GET", "/info", limit: AnswerLimit.object, operation: "asking the engine for its swarm state"))
    }

    /// The membership a `GET /info` answer states; inactive when it states none.
    static func swarmMembership(_ data: Data) -> SwarmMembership {
        let swarm = JSONAnswer.decode(EngineAnswer.Info.self, from: data)?.swarm
        return SwarmMembership(
            state: swarm?.localNodeState ?? "inactive", nodeID: swarm?.nodeID ?? "",
            isManager: swarm?.controlAvailable ?? false, clusterID: swarm?.clusterID ?? "")
    }

    // MARK: Services

    public struct ServiceSummary: Sendable, Equatable {
        public var id: String
        public var name: String
        public var labels: [String: String]
        /// `Version.Index`, which an update must quote.
        public var version: Int
        public var replicas: Int
        public var image: String
        /// `UpdateStatus.State`: `updating`, `completed`, `paused`, `rollback_started`, ... ("" when never updated).
        public var updateState: String
        /// How tasks publish ports: `host` or `ingress` (the first published port's).
        public var publishMode: String
        /// `Spec.TaskTemplate.ForceUpdate`: an update that must replace the tasks counts it up.
        public var forceUpdate: Int

        public static func == (lhs: ServiceSummary, rhs: ServiceSummary) -> Bool {
            lhs.id == rhs.id && lhs.version == rhs.version
        }
    }

    /// Services carrying every one of `labels`.
    public func services(labels: [String: String]) async throws -> [ServiceSummary] {
        Self.serviceSummaries(
            try await call(
                "GET", "/services", query: ["filters": try Self.labelFilter(labels)], limit: AnswerLimit.list,
                operation: "listing services"))
    }

    /// The services of a `GET /services` answer; none when it is not a list of objects.
    static func serviceSummaries(_ data: Data) -> [ServiceSummary] {
        (JSONAnswer.decode([EngineAnswer.Service].self, from: data) ?? []).map { entry in
            ServiceSummary(
                id: entry.id ?? "", name: entry.name ?? "", labels: entry.labels ?? [:], version: entry.version ?? 0,
                replicas: entry.replicas ?? 0, image: entry.image ?? "", updateState: entry.updateState ?? "",
                publishMode: entry.ports?.first?.publishMode ?? "ingress", forceUpdate: entry.forceUpdate ?? 0)
        }
    }

    /// `POST /services/create` without asking a registry for the image (a swarm without one).
    public func createService(_ spec: ServiceSpec) async throws -> String {
        let name = spec.name
        let answer = try await answer(
            "POST", "/services/create", body: .data(try JSONEncoder().encode(spec)), contentType: "application/json",
            limit: AnswerLimit.object, operation: "creating service \(name)")
        guard let id = JSONAnswer.decode(EngineAnswer.Created.self, from: answer.body)?.serviceID else {
            throw DockerError(
                status: answer.status, operation: "creating service \(name)",
                message: "the engine answered without an ID")
        }
        return id
    }

    /// `POST /services/ID/update` at the version read with the spec.
    public func updateService(_ id: String, version: Int, spec: ServiceSpec) async throws {
        try await call(
            "POST", "/services/\(id)/update", query: ["version": String(version)],
            body: .data(try JSONEncoder().encode(spec)), contentType: "application/json", limit: AnswerLimit.object,
            operation: "updating service \(spec.name)")
    }

    /// Removes a service; one that is gone is not an error.
    public func removeService(_ id: String) async throws {
        do {
            try await call("DELETE", "/services/\(id)", limit: AnswerLimit.object, operation: "removing service \(id)")
        } catch let error as DockerError where error.isNotFound {}
    }

    /// The last lines a service's tasks logged (`GET /services/ID/logs`).
    public func serviceLogs(_ id: String, lines: Int = 20) async throws -> String {
        let data = try await call(
            "GET", "/services/\(id)/logs", query: ["stdout": "true", "stderr": "true", "tail": String(lines)],
            timeout: .seconds(10), limit: AnswerLimit.logs,
            operation: "reading the logs of service \(id)")
        return Self.demultiplex(data)
    }

    // MARK: Tasks

    public struct SwarmTask: Sendable, Equatable {
        public var id: String
        public var serviceID: String
        public var nodeID: String
        /// `Status.State`: `new` ... `running`, `complete`, `failed`, `shutdown`, `rejected`, `orphaned`.
        public var state: String
        public var desiredState: String
        /// `Status.Err` or `Status.Message`.
        public var message: String
        /// The host port a host-mode published port got on the task's node.
        public var publishedPorts: [Int]
        public var image: String
        /// The service version the task was created from.
        public var serviceVersion: Int
        public var updatedAt: String
    }

    /// The tasks of a service, every state.
    public func tasks(service: String) async throws -> [SwarmTask] {
        let filters = String(
            decoding: try JSONSerialization.data(withJSONObject: ["service": [service]]), as: UTF8.self)
        return Self.swarmTasks(
            try await call(
                "GET", "/tasks", query: ["filters": filters], limit: AnswerLimit.list,
                operation: "listing the tasks of \(service)"))
    }

    /// The tasks of a `GET /tasks` answer; none when it is not a list of objects.
    static func swarmTasks(_ data: Data) -> [SwarmTask] {
        (JSONAnswer.decode([EngineAnswer.Task].self, from: data) ?? []).map { entry in
            SwarmTask(
                id: entry.id ?? "", serviceID: entry.serviceID ?? "", nodeID: entry.nodeID ?? "",
                state: entry.state ?? "", desiredState: entry.desiredState ?? "",
                message: OutsideText.bounded(
                    entry.error.flatMap { $0.isEmpty ? nil : $0 } ?? entry.message ?? "",
                    limit: OutsideText.messageLimit),
                publishedPorts: (entry.ports ?? []).compactMap(\.publishedPort), image: entry.image ?? "",
                serviceVersion: entry.version ?? 0, updatedAt: entry.updatedAt ?? "")
        }
    }

    // MARK: Images built on the engine

    /// Builds `tag` on this engine from a folder (its `Dockerfile` and what it copies) with the
    /// engine's own builder, without pulling (the base image must be on the engine). The build's
    /// errors, which the engine streams with status 200, are thrown.
    public func buildImage(context folder: String, tag: String, labels: [String: String] = [:]) async throws {
        let tarball = folder + ".tar"
        defer { try? FileManager.default.removeItem(atPath: tarball) }
        let tar = try await Subprocess.run(
            .name("tar"), arguments: ["-C", folder, "-cf", tarball, "."], output: .discarded,
            error: .string(limit: 1 << 16))
        guard tar.terminationStatus.isSuccess else {
            throw EngineClientError("tar failed: \(tar.standardError)")
        }
        let labelsJSON = String(decoding: try JSONSerialization.data(withJSONObject: labels), as: UTF8.self)
        let data = try await call(
            "POST", "/build", query: ["t": tag, "pull": "0", "rm": "1", "forcerm": "1", "labels": labelsJSON],
            body: .file(tarball),
            contentType: "application/x-tar", timeout: .seconds(600), limit: AnswerLimit.progress,
            operation: "building \(tag) on \(host)")
        for line in data.split(separator: UInt8(ascii: "\n")) {
            if let error = JSONAnswer.decode(EngineAnswer.Progress.self, from: Data(line))?.error {
                throw DockerError(
                    status: 200, operation: "building \(tag) on \(host)",
                    message: OutsideText.bounded(
                        error.trimmingCharacters(in: .whitespacesAndNewlines), limit: OutsideText.messageLimit))
            }
        }
    }

    /// Removes an image; one that is gone or still used is left (the answer says which).
    public func removeImage(_ reference: String) async throws {
        do {
            try await call(
                "DELETE", "/images/\(reference)", limit: AnswerLimit.object, operation: "removing image \(reference)")
        } catch let error as DockerError where error.isNotFound || error.status == 409 {}
    }
}
