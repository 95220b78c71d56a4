/// A swarm service's spec as the Engine API takes it (`POST /services/create`,
/// `POST /services/ID/update`, which replaces the whole spec), as far as the controller sets it.
/// Names follow the API's fields; durations are nanoseconds.
public struct ServiceSpec: Sendable, Equatable, Encodable {
    public var name: String
    public var labels: [String: String]
    public var taskTemplate: TaskTemplate
    public var mode: Mode
    public var updateConfig: UpdateConfig
    public var rollbackConfig: UpdateConfig
    public var endpointSpec: EndpointSpec

    public init(
        name: String, labels: [String: String], taskTemplate: TaskTemplate, mode: Mode, updateConfig: UpdateConfig,
        rollbackConfig: UpdateConfig, endpointSpec: EndpointSpec
    ) {
        self.name = name
        self.labels = labels
        self.taskTemplate = taskTemplate
        self.mode = mode
        self.updateConfig = updateConfig
        self.rollbackConfig = rollbackConfig
        self.endpointSpec = endpointSpec
    }

    enum CodingKeys: String, CodingKey {
        case name = "Name"
        case labels = "Labels"
        case taskTemplate = "TaskTemplate"
        case mode = "Mode"
        case updateConfig = "UpdateConfig"
        case rollbackConfig = "RollbackConfig"
        case endpointSpec = "EndpointSpec"
    }

    public struct TaskTemplate: Sendable, Equatable, Encodable {
        public var containerSpec: ContainerSpec
        public var placement: Placement
        public var restartPolicy: RestartPolicy
        /// A counter whose change makes the swarm replace the tasks even of an unchanged spec.
        public var forceUpdate: Int?

        public init(
            containerSpec: ContainerSpec, placement: Placement, restartPolicy: RestartPolicy, forceUpdate: Int? = nil
        ) {
            self.containerSpec = containerSpec
            self.placement = placement
            self.restartPolicy = restartPolicy
            self.forceUpdate = forceUpdate
        }

        enum CodingKeys: String, CodingKey {
            case containerSpec = "ContainerSpec"
            case placement = "Placement"
            case restartPolicy = "RestartPolicy"
            case forceUpdate = "ForceUpdate"
        }
    }

    public struct ContainerSpec: Sendable, Equatable, Encodable {
        public var image: String
        public var command: [String]
        public var labels: [String: String]
        /// Runs an init process as PID 1, which reaps and forwards signals.
        public var `init`: Bool
        public var stopGracePeriod: Int64

        public init(image: String, command: [String], labels: [String: String], init: Bool, stopGracePeriod: Int64) {
            self.image = image
            self.command = command
            self.labels = labels
            self.`init` = `init`
            self.stopGracePeriod = stopGracePeriod
        }

        enum CodingKeys: String, CodingKey {
            case image = "Image"
            case command = "Command"
            case labels = "Labels"
            case `init` = "Init"
            case stopGracePeriod = "StopGracePeriod"
        }
    }

    public struct Placement: Sendable, Equatable, Encodable {
        public var constraints: [String]
        /// Spread the tasks over the values of these node labels.
        public var spread: [String]
        /// At most this many tasks on one node.
        public var maxReplicas: Int?

        public init(constraints: [String], spread: [String], maxReplicas: Int? = nil) {
            self.constraints = constraints
            self.spread = spread
            self.maxReplicas = maxReplicas
        }

        enum CodingKeys: String, CodingKey {
            case constraints = "Constraints"
            case preferences = "Preferences"
            case maxReplicas = "MaxReplicas"
        }

        private struct Preference: Encodable {
            var spread: [String: String]
            enum CodingKeys: String, CodingKey { case spread = "Spread" }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(constraints, forKey: .constraints)
            try container.encode(spread.map { Preference(spread: ["SpreadDescriptor": $0]) }, forKey: .preferences)
            try container.encodeIfPresent(maxReplicas, forKey: .maxReplicas)
        }
    }

    public struct RestartPolicy: Sendable, Equatable, Encodable {
        /// `none`, `on-failure` or `any`.
        public var condition: String
        public var delay: Int64
        /// 0: no limit.
        public var maxAttempts: Int

        public init(condition: String, delay: Int64, maxAttempts: Int) {
            self.condition = condition
            self.delay = delay
            self.maxAttempts = maxAttempts
        }

        enum CodingKeys: String, CodingKey {
            case condition = "Condition"
            case delay = "Delay"
            case maxAttempts = "MaxAttempts"
        }
    }

    public struct Mode: Sendable, Equatable, Encodable {
        /// `Replicated.Replicas`.
        public var replicas: Int

        public init(replicas: Int) { self.replicas = replicas }

        enum CodingKeys: String, CodingKey { case replicated = "Replicated" }
        enum ReplicatedKeys: String, CodingKey { case replicas = "Replicas" }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            var replicated = container.nestedContainer(keyedBy: ReplicatedKeys.self, forKey: .replicated)
            try replicated.encode(replicas, forKey: .replicas)
        }
    }

    /// How the swarm replaces tasks (`UpdateConfig`) or rolls them back (`RollbackConfig`).
    public struct UpdateConfig: Sendable, Equatable, Encodable {
        public var parallelism: Int
        public var delay: Int64
        /// `continue`, `pause` or `rollback`.
        public var failureAction: String
        public var monitor: Int64
        /// `stop-first` or `start-first`.
        public var order: String

        public init(parallelism: Int, delay: Int64, failureAction: String, monitor: Int64, order: String) {
            self.parallelism = parallelism
            self.delay = delay
            self.failureAction = failureAction
            self.monitor = monitor
            self.order = order
        }

        enum CodingKeys: String, CodingKey {
            case parallelism = "Parallelism"
            case delay = "Delay"
            case failureAction = "FailureAction"
            case monitor = "Monitor"
            case order = "Order"
        }
    }

    public struct EndpointSpec: Sendable, Equatable, Encodable {
        /// `vip` or `dnsrr`.
        public var mode: String
        public var ports: [Port]

        public init(mode: String, ports: [Port]) {
            self.mode = mode
            self.ports = ports
        }

        enum CodingKeys: String, CodingKey {
            case mode = "Mode"
            case ports = "Ports"
        }

        public struct Port: Sendable, Equatable, Encodable {
            public var `protocol`: String
            public var targetPort: Int
            public var publishedPort: Int
            /// `host` or `ingress`.
            public var publishMode: String

            public init(protocol: String, targetPort: Int, publishedPort: Int, publishMode: String) {
                self.`protocol` = `protocol`
                self.targetPort = targetPort
                self.publishedPort = publishedPort
                self.publishMode = publishMode
            }

            enum CodingKeys: String, CodingKey {
                case `protocol` = "Protocol"
                case targetPort = "TargetPort"
                case publishedPort = "PublishedPort"
                case publishMode = "PublishMode"
            }
        }
    }
}
