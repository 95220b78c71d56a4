import Foundation
import StrictYAML
import Yams

/// The subset of the Compose specification the Docker runtime reads: per service `image`,
/// `command`, `environment`, `ports`, `volumes` (binds), `labels`, `healthcheck`, `networks`,
/// `network_mode`, `depends_on`, `restart` and `init`; top-level `name`, `services`, `networks`.
/// `${VAR}` and `${VAR:-default}` are substituted as docker compose does. Anything else is
/// reported with its line and column rather than silently ignored.
public struct ComposeFile: Sendable, Equatable {
    public struct Port: Sendable, Equatable, Codable {
        public var hostIP: String?
        public var hostPort: Int?
        public var containerPort: Int
    }

    public struct Bind: Sendable, Equatable, Codable {
        public var source: String
        public var target: String
        public var readOnly: Bool
    }

    public struct Healthcheck: Sendable, Equatable, Codable {
        public var test: [String]
        public var interval: String?
        public var timeout: String?
        public var retries: Int?
    }

    public struct Service: Sendable, Equatable, Codable {
        public var name: String
        public var image: String
        public var command: [String]?
        public var environment: [String: String] = [:]
        public var ports: [Port] = []
        public var volumes: [Bind] = []
        public var labels: [String: String] = [:]
        public var healthcheck: Healthcheck?
        public var networks: [String] = []
        public var networkMode: String?
        public var dependsOn: [String] = []
        public var restart: String?
        public var initProcess: Bool = false
    }

    public var path: String
    public var project: String
    public var services: [String: Service]
    public var networks: [String]

    public init(path: String, project: String, services: [String: Service], networks: [String]) {
        self.path = path
        self.project = project
        self.services = services
        self.networks = networks
    }

    /// Loads `path`, substituting `variables` (then the environment).
    public static func load(
        _ path: String, project: String? = nil, variables: [String: String] = [:]
    ) throws -> ComposeFile {
        let data: Data
        do {
            data = try YAMLFile.read(path)
        } catch {
            throw EngineClientError(
                "\(error.path): cannot read the compose file: \(error.reason)", hint: "check deploy.docker.compose",
                cause: error)
        }
        let environment = ProcessInfo.processInfo.environment.merging(variables) { $1 }
        let reader = NodeReader(file: path, environment: environment)
        let root: Node
        do {
            guard let node = try NodeReader.compose(String(decoding: data, as: UTF8.self)) else {
                throw EngineClientError("\(path): the compose file is empty")
            }
            root = node
        } catch let error as EngineClientError {
            throw error
        } catch {
            throw EngineClientError("\(path): not valid YAML: \(error)", cause: error)
        }
        reader.reportTags(in: root)
        let folder = (path as NSString).deletingLastPathComponent
        var file = ComposeFile(path: path, project: project ?? "", services: [:], networks: [])
        if let map = reader.mapping(root, "", allowed: ["name", "services", "networks", "version"]) {
            file.project =
                project ?? map["name"].flatMap { reader.nonEmptyString($0, "name") }
                ?? ((folder as NSString).lastPathComponent)
            if let networks = map["networks"], case .mapping(let entries) = networks {
                file.networks = entries.compactMap { $0.key.scalar?.string }
            }
            if let services = map["services"].flatMap({ reader.mapping($0, "services", allowed: Self.anyKey($0)) }) {
                for (name, node) in services {
                    if let service = decodeService(name, node, reader: reader, folder: folder) {
                        file.services[name] = service
                    }
                }
            } else if map["services"] == nil {
                reader.report(root, "services", "a compose file needs services:")
            }
            for service in file.services.values {
                for dependency in service.dependsOn where file.services[dependency] == nil {
                    reader.report(
                        nil, "services.\(service.name).depends_on",
                        "depends on \(dependency), which is not a service here")
                }
                for network in service.networks where !file.networks.contains(network) && network != "default" {
                    reader.report(
                        nil, "services.\(service.name).networks",
                        "uses network \(network), which is not declared under networks:")
                }
            }
            if let cycle = file.dependencyCycle() {
                reader.report(
                    nil, "services.\(cycle[0]).depends_on",
                    "depends_on goes round in a circle (\(cycle.joined(separator: " -> "))): no service could start first"
                )
            }
        }
        if !reader.issues.isEmpty {
            throw EngineClientError(reader.issues.map(\.description).joined(separator: "\n"))
        }
        return file
    }

    /// The project a compose file names (`name:`, else its folder's name), read without
    /// substituting variables: enough to list or remove what the project runs.
    public static func projectName(of path: String) throws -> String {
        let data: Data
        do {
            data = try YAMLFile.read(path)
        } catch {
            throw EngineClientError("\(error.path): cannot read the compose file: \(error.reason)", cause: error)
        }
        let root = try? NodeReader.compose(String(decoding: data, as: UTF8.self))
        if case .mapping(let map)? = root, let name = map["name"]?.scalar?.string, !name.contains("$") { return name }
        return ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent
    }

    private static func anyKey(_ node: Node) -> [String] {
        guard case .mapping(let mapping) = node else { return [] }
        return mapping.compactMap { $0.key.scalar?.string }
    }

    private static func decodeService(_ name: String, _ node: Node, reader: NodeReader, folder: String) -> Service? {
        let path = "services.\(name)"
        guard
            let map = reader.mapping(
                node, path,
                allowed: [
                    "image", "command", "environment", "ports", "volumes", "labels", "healthcheck", "networks",
                    "network_mode", "depends_on",
                    "restart", "init", "container_name",
                ])
        else { return nil }
        guard
            let image = reader.required(map, "image", path, in: node).flatMap({
                reader.nonEmptyString($0, "\(path).image")
            })
        else { return nil }
        var service = Service(name: name, image: image)
        if let command = map["command"] {
            if let list = command.sequence {
                service.command = list.compactMap { reader.string($0, "\(path).command") }
            } else if let text = reader.string(command, "\(path).command") {
                service.command = text.split(separator: " ").map(String.init)
            }
        }
        if let environment = map["environment"] {
            if let list = environment.sequence {
                for item in list.compactMap({ reader.string($0, "\(path).environment") }) {
                    let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                    guard let variable = parts.first, !variable.isEmpty else {
                        reader.report(environment, "\(path).environment", "\"\(item)\" is not NAME=VALUE")
                        continue
                    }
                    service.environment[String(variable)] = parts.count > 1 ? String(parts[1]) : ""
                }
            } else {
                service.environment = reader.stringMap(environment, "\(path).environment")
            }
        }
        for text in map["ports"].flatMap({ reader.stringList($0, "\(path).ports") }) ?? [] {
            // [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp]
            let parts = text.replacingOccurrences(of: "/tcp", with: "").split(separator: ":").map(String.init)
            guard let containerPort = parts.last.flatMap({ Int($0) }), parts.count <= 3,
                parts.count < 2 || Int(parts[parts.count - 2]) != nil
            else {
                reader.report(map["ports"], "\(path).ports", "\"\(text)\" is not [HOST_IP:][HOST_PORT:]CONTAINER_PORT")
                continue
            }
            service.ports.append(
                Port(
                    hostIP: parts.count == 3 ? parts[0] : nil,
                    hostPort: parts.count >= 2 ? Int(parts[parts.count - 2]) : nil, containerPort: containerPort))
        }
        for text in map["volumes"].flatMap({ reader.stringList($0, "\(path).volumes") }) ?? [] {
            let parts = text.split(separator: ":").map(String.init)
            guard parts.count == 2 || parts.count == 3, parts[0].hasPrefix("/") || parts[0].hasPrefix("."),
                parts[1].hasPrefix("/"),
                parts.count == 2 || ["ro", "rw"].contains(parts[2])
            else {
                reader.report(
                    map["volumes"], "\(path).volumes",
                    "\"\(text)\" is not a bind SOURCE:TARGET[:ro|rw] with a path as source (named volumes are not read)"
                )
                continue
            }
            let source =
                parts[0].hasPrefix("/")
                ? parts[0] : URL(fileURLWithPath: folder).appendingPathComponent(parts[0]).standardized.path
            service.volumes.append(
                Bind(source: source, target: parts[1], readOnly: parts.count == 3 && parts[2] == "ro"))
        }
        service.labels = reader.stringMap(map["labels"], "\(path).labels")
        if let node = map["healthcheck"],
            let check = reader.mapping(
                node, "\(path).healthcheck", allowed: ["test", "interval", "timeout", "retries"])
        {
            let test = check["test"].flatMap { reader.stringList($0, "\(path).healthcheck.test") } ?? []
            service.healthcheck = Healthcheck(
                test: test, interval: check["interval"].flatMap { reader.string($0, "") },
                timeout: check["timeout"].flatMap { reader.string($0, "") },
                retries: check["retries"].flatMap { reader.int($0, "\(path).healthcheck.retries", range: 0...100) })
        }
        service.networks = map["networks"].flatMap { reader.stringList($0, "\(path).networks") } ?? []
        service.networkMode = map["network_mode"].flatMap {
            reader.choice($0, "\(path).network_mode", among: ["host", "bridge", "none"])
        }
        service.dependsOn = map["depends_on"].flatMap { reader.stringList($0, "\(path).depends_on") } ?? []
        service.restart = map["restart"].flatMap {
            reader.choice($0, "\(path).restart", among: ["no", "always", "on-failure", "unless-stopped"])
        }
        service.initProcess = map["init"].flatMap { reader.bool($0, "\(path).init") } ?? false
        return service
    }

    /// The services in an order where each comes after what it depends on.
    /// A dependency cycle is broken where it closes (`load` refuses files that have one).
    public func startOrder(_ names: [String]) -> [String] {
        var ordered: [String] = []
        var started: Set<String> = []
        func visit(_ name: String) {
            guard started.insert(name).inserted, let service = services[name] else { return }
            service.dependsOn.forEach(visit)
            ordered.append(name)
        }
        names.sorted().forEach(visit)
        return ordered
    }

    /// The first chain of `depends_on` that comes back to a service already on it, from that
    /// service to itself again; nil when there is none.
    func dependencyCycle() -> [String]? {
        var finished: Set<String> = []
        var chain: [String] = []
        func visit(_ name: String) -> [String]? {
            if let start = chain.firstIndex(of: name) { return chain[start...] + [name] }
            guard !finished.contains(name), let service = services[name] else { return nil }
            chain.append(name)
            for dependency in service.dependsOn {
                if let cycle = visit(dependency) { return cycle }
            }
            chain.removeLast()
            finished.insert(name)
            return nil
        }
        for name in services.keys.sorted() {
            if let cycle = visit(name) { return cycle }
        }
        return nil
    }
}
