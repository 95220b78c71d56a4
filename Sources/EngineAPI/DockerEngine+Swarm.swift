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
        let list = try await list("/nodes", operation: "listing the swarm's nodes")
        return list.map { entry in
            let spec = entry["Spec"] as? [String: Any] ?? [:]
            let status = entry["Status"] as? [String: Any] ?? [:]
            let description = entry["Description"] as? [String: Any] ?? [:]
            var address = status["Addr"] as? String ?? ""
            // A manager may report 0.0.0.0; its manager address has the real one.
            if address.isEmpty || address == "0.0.0.0",
                let manager = (entry["ManagerStatus"] as? [String: Any])?["Addr"] as? String
            {
                address = String(manager.split(separator: ":").first ?? "")
            }
            return SwarmNode(
                id: entry["ID"] as? String ?? "", hostname: description["Hostname"] as? String ?? "", address: address,
                state: status["State"] as? String ?? "", availability: spec["Availability"] as? String ?? "",
                role: spec["Role"] as? String ?? "", labels: spec["Labels"] as? [String: String] ?? [:])
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
        let info = try await object("GET", "/info", operation: "asking the engine for its swarm state")
        let swarm = info["Swarm"] as? [String: Any] ?? [:]
        return SwarmMembership(
            state: swarm["LocalNodeState"] as? String ?? "inactive", nodeID: swarm["NodeID"] as? String ?? "",
            isManager: swarm["ControlAvailable"] as? Bool ?? false,
            clusterID: (swarm["Cluster"] as? [String: Any])?["ID"] as? String ?? "")
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
        /// The whole spec as the engine returned it, to be changed and sent back by an update.
        public var spec: [String: Any] {
            specJSON.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
        }
        var specJSON: Data?

        public static func == (lhs: ServiceSummary, rhs: ServiceSummary) -> Bool {
            lhs.id == rhs.id && lhs.version == rhs.version
        }
    }

    /// Services carrying every one of `labels`.
    public func services(labels: [String: String]) async throws -> [ServiceSummary] {
        let list = try await list(
            "/services", query: ["filters": try Self.labelFilter(labels)], operation: "listing services")
        return list.map { entry in
            let spec = entry["Spec"] as? [String: Any] ?? [:]
            let mode = (spec["Mode"] as? [String: Any])?["Replicated"] as? [String: Any]
            let template = spec["TaskTemplate"] as? [String: Any] ?? [:]
            let ports = (spec["EndpointSpec"] as? [String: Any])?["Ports"] as? [[String: Any]] ?? []
            return ServiceSummary(
                id: entry["ID"] as? String ?? "", name: spec["Name"] as? String ?? "",
                labels: spec["Labels"] as? [String: String] ?? [:],
                version: (entry["Version"] as? [String: Any])?["Index"] as? Int ?? 0,
                replicas: mode?["Replicas"] as? Int ?? 0,
                image: (template["ContainerSpec"] as? [String: Any])?["Image"] as? String ?? "",
                updateState: (entry["UpdateStatus"] as? [String: Any])?["State"] as? String ?? "",
                publishMode: ports.first?["PublishMode"] as? String ?? "ingress",
                specJSON: try? JSONSerialization.data(withJSONObject: spec))
        }
    }

    /// `POST /services/create` without asking a registry for the image (a swarm without one).
    public func createService(_ spec: [String: Any]) async throws -> String {
        let name = spec["Name"] as? String ?? "?"
        let answer = try await answer(
            "POST", "/services/create", json: spec, limit: AnswerLimit.object, operation: "creating service \(name)")
        guard let id = JSONAnswer.decode(EngineAnswer.Created.self, from: answer.body)?.serviceID else {
            throw DockerError(
                status: answer.status, operation: "creating service \(name)",
                message: "the engine answered without an ID")
        }
        return id
    }

    /// `POST /services/ID/update` at the version read with the spec.
    public func updateService(_ id: String, version: Int, spec: [String: Any]) async throws {
        try await call(
            "POST", "/services/\(id)/update", query: ["version": String(version)], json: spec,
            limit: AnswerLimit.object,
            operation: "updating service \(spec["Name"] as? String ?? id)")
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
        let list = try await list("/tasks", query: ["filters": filters], operation: "listing the tasks of \(service)")
        return list.map { entry in
            let status = entry["Status"] as? [String: Any] ?? [:]
            let ports = ((status["PortStatus"] as? [String: Any])?["Ports"] as? [[String: Any]] ?? []).compactMap {
                $0["PublishedPort"] as? Int
            }
            let container = (entry["Spec"] as? [String: Any])?["ContainerSpec"] as? [String: Any] ?? [:]
            return SwarmTask(
                id: entry["ID"] as? String ?? "", serviceID: entry["ServiceID"] as? String ?? "",
                nodeID: entry["NodeID"] as? String ?? "",
                state: status["State"] as? String ?? "", desiredState: entry["DesiredState"] as? String ?? "",
                message: OutsideText.bounded(
                    (status["Err"] as? String).flatMap { $0.isEmpty ? nil : $0 } ?? status["Message"] as? String ?? "",
                    limit: OutsideText.messageLimit),
                publishedPorts: ports, image: container["Image"] as? String ?? "",
                serviceVersion: (entry["Version"] as? [String: Any])?["Index"] as? Int ?? 0,
                updatedAt: entry["UpdatedAt"] as? String ?? "")
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
