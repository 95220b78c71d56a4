import Foundation
import HTTPTransport

/// The swarm answers of the Docker Engine API, as far as the client reads them (`GET /info`'s
/// `Swarm`, `GET /nodes`, `GET /services`, `GET /tasks`), lenient as every `EngineAnswer`: a
/// field that is absent or of another type reads as nil. Names follow the API's fields.
extension EngineAnswer {
    /// `Version` of a swarm object: `{"Index": 71}`.
    struct ObjectVersion: Decodable {
        var index: Int?

        enum CodingKeys: String, CodingKey { case index = "Index" }

        init(from decoder: any Decoder) throws {
            index = try decoder.container(keyedBy: CodingKeys.self).lenient(Int.self, forKey: .index)
        }
    }

    /// `ContainerSpec` of a service's task template or of a task.
    struct ContainerSpec: Decodable {
        var image: String?

        enum CodingKeys: String, CodingKey { case image = "Image" }

        init(from decoder: any Decoder) throws {
            image = try decoder.container(keyedBy: CodingKeys.self).lenient(String.self, forKey: .image)
        }
    }

    /// A published port (`EndpointPortConfig`), in a service's endpoint spec or a task's port status.
    struct Port: Decodable {
        var publishMode: String?
        var publishedPort: Int?

        enum CodingKeys: String, CodingKey {
            case publishMode = "PublishMode"
            case publishedPort = "PublishedPort"
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            publishMode = container.lenient(String.self, forKey: .publishMode)
            publishedPort = container.lenient(Int.self, forKey: .publishedPort)
        }
    }

    /// `GET /info`, its `Swarm` part.
    struct Info: Decodable {
        var swarm: Swarm?

        struct Swarm: Decodable {
            var localNodeState: String?
            var nodeID: String?
            var controlAvailable: Bool?
            var clusterID: String?

            enum CodingKeys: String, CodingKey {
                case localNodeState = "LocalNodeState"
                case nodeID = "NodeID"
                case controlAvailable = "ControlAvailable"
                case cluster = "Cluster"
            }

            enum ClusterKeys: String, CodingKey { case id = "ID" }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                localNodeState = container.lenient(String.self, forKey: .localNodeState)
                nodeID = container.lenient(String.self, forKey: .nodeID)
                controlAvailable = container.lenient(Bool.self, forKey: .controlAvailable)
                clusterID = (try? container.nestedContainer(keyedBy: ClusterKeys.self, forKey: .cluster))?.lenient(
                    String.self, forKey: .id)
            }
        }

        enum CodingKeys: String, CodingKey { case swarm = "Swarm" }

        init(from decoder: any Decoder) throws {
            swarm = try decoder.container(keyedBy: CodingKeys.self).lenient(Swarm.self, forKey: .swarm)
        }
    }

    /// One entry of `GET /nodes`.
    struct Node: Decodable {
        var id: String?
        var hostname: String?
        var availability: String?
        var role: String?
        var labels: [String: String]?
        var state: String?
        var address: String?
        /// `ManagerStatus.Addr`: `HOST:PORT` of a manager.
        var managerAddress: String?

        enum CodingKeys: String, CodingKey {
            case id = "ID"
            case spec = "Spec"
            case status = "Status"
            case description = "Description"
            case managerStatus = "ManagerStatus"
        }

        enum SpecKeys: String, CodingKey {
            case availability = "Availability"
            case role = "Role"
            case labels = "Labels"
        }

        enum StatusKeys: String, CodingKey {
            case state = "State"
            case address = "Addr"
        }

        enum DescriptionKeys: String, CodingKey { case hostname = "Hostname" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            let spec = try? container.nestedContainer(keyedBy: SpecKeys.self, forKey: .spec)
            availability = spec?.lenient(String.self, forKey: .availability)
            role = spec?.lenient(String.self, forKey: .role)
            labels = spec?.lenient([String: String].self, forKey: .labels)
            let status = try? container.nestedContainer(keyedBy: StatusKeys.self, forKey: .status)
            state = status?.lenient(String.self, forKey: .state)
            address = status?.lenient(String.self, forKey: .address)
            hostname = (try? container.nestedContainer(keyedBy: DescriptionKeys.self, forKey: .description))?
                .lenient(String.self, forKey: .hostname)
            managerAddress = (try? container.nestedContainer(keyedBy: StatusKeys.self, forKey: .managerStatus))?
                .lenient(String.self, forKey: .address)
        }
    }

    /// One entry of `GET /services`.
    struct Service: Decodable {
        var id: String?
        var name: String?
        var labels: [String: String]?
        var version: Int?
        /// `Spec.Mode.Replicated.Replicas`.
        var replicas: Int?
        /// `Spec.TaskTemplate.ContainerSpec.Image`.
        var image: String?
        /// `UpdateStatus.State`.
        var updateState: String?
        /// `Spec.EndpointSpec.Ports`.
        var ports: [Port]?
        /// `Spec.TaskTemplate.ForceUpdate`.
        var forceUpdate: Int?

        enum CodingKeys: String, CodingKey {
            case id = "ID"
            case spec = "Spec"
            case version = "Version"
            case updateStatus = "UpdateStatus"
        }

        enum SpecKeys: String, CodingKey {
            case name = "Name"
            case labels = "Labels"
            case mode = "Mode"
            case taskTemplate = "TaskTemplate"
            case endpointSpec = "EndpointSpec"
        }

        enum ModeKeys: String, CodingKey { case replicated = "Replicated" }
        enum ReplicatedKeys: String, CodingKey { case replicas = "Replicas" }
        enum TaskTemplateKeys: String, CodingKey {
            case containerSpec = "ContainerSpec"
            case forceUpdate = "ForceUpdate"
        }
        enum EndpointSpecKeys: String, CodingKey { case ports = "Ports" }
        enum UpdateStatusKeys: String, CodingKey { case state = "State" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            version = container.lenient(ObjectVersion.self, forKey: .version)?.index
            updateState = (try? container.nestedContainer(keyedBy: UpdateStatusKeys.self, forKey: .updateStatus))?
                .lenient(String.self, forKey: .state)
            let spec = try? container.nestedContainer(keyedBy: SpecKeys.self, forKey: .spec)
            name = spec?.lenient(String.self, forKey: .name)
            labels = spec?.lenient([String: String].self, forKey: .labels)
            let replicated = (try? spec?.nestedContainer(keyedBy: ModeKeys.self, forKey: .mode))
                .flatMap { try? $0.nestedContainer(keyedBy: ReplicatedKeys.self, forKey: .replicated) }
            replicas = replicated?.lenient(Int.self, forKey: .replicas)
            let template = try? spec?.nestedContainer(keyedBy: TaskTemplateKeys.self, forKey: .taskTemplate)
            image = template?.lenient(ContainerSpec.self, forKey: .containerSpec)?.image
            forceUpdate = template?.lenient(Int.self, forKey: .forceUpdate)
            ports = (try? spec?.nestedContainer(keyedBy: EndpointSpecKeys.self, forKey: .endpointSpec))?
                .lenient([Port].self, forKey: .ports)
        }
    }

    /// One entry of `GET /tasks`.
    struct Task: Decodable {
        var id: String?
        var serviceID: String?
        var nodeID: String?
        var desiredState: String?
        var updatedAt: String?
        var version: Int?
        /// `Status.State`, `Status.Err`, `Status.Message`.
        var state: String?
        var error: String?
        var message: String?
        /// `Status.PortStatus.Ports`.
        var ports: [Port]?
        /// `Spec.ContainerSpec.Image`.
        var image: String?

        enum CodingKeys: String, CodingKey {
            case id = "ID"
            case serviceID = "ServiceID"
            case nodeID = "NodeID"
            case desiredState = "DesiredState"
            case updatedAt = "UpdatedAt"
            case version = "Version"
            case status = "Status"
            case spec = "Spec"
        }

        enum StatusKeys: String, CodingKey {
            case state = "State"
            case error = "Err"
            case message = "Message"
            case portStatus = "PortStatus"
        }

        enum PortStatusKeys: String, CodingKey { case ports = "Ports" }
        enum SpecKeys: String, CodingKey { case containerSpec = "ContainerSpec" }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            id = container.lenient(String.self, forKey: .id)
            serviceID = container.lenient(String.self, forKey: .serviceID)
            nodeID = container.lenient(String.self, forKey: .nodeID)
            desiredState = container.lenient(String.self, forKey: .desiredState)
            updatedAt = container.lenient(String.self, forKey: .updatedAt)
            version = container.lenient(ObjectVersion.self, forKey: .version)?.index
            let status = try? container.nestedContainer(keyedBy: StatusKeys.self, forKey: .status)
            state = status?.lenient(String.self, forKey: .state)
            error = status?.lenient(String.self, forKey: .error)
            message = status?.lenient(String.self, forKey: .message)
            ports = (try? status?.nestedContainer(keyedBy: PortStatusKeys.self, forKey: .portStatus))?
                .lenient([Port].self, forKey: .ports)
            image =
                (try? container.nestedContainer(keyedBy: SpecKeys.self, forKey: .spec))?
                .lenient(ContainerSpec.self, forKey: .containerSpec)?.image
        }
    }
}
