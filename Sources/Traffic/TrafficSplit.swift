/// How traffic is divided between the colours: the whole desired state of the load balancer.
public struct TrafficSplit: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable {
        /// `split_clients` on the user id of `/recommend/{userId}`: one user sees one colour.
        case sticky
        /// Weighted round robin over both colours' servers.
        case weighted
    }

    public struct Backend: Sendable, Codable, Equatable {
        public var color: String
        /// host:port.
        public var address: String
        /// Percent of traffic, 0 to 100.
        public var weight: Int

        public init(color: String, address: String, weight: Int) {
            self.color = color
            self.address = address
            self.weight = weight
        }
    }

    public var mode: Mode
    /// The colours with their weights; those at 0% are left out of the configuration.
    public var backends: [Backend]

    public init(mode: Mode, backends: [Backend]) {
        self.mode = mode
        self.backends = backends
    }

    /// The weight of a colour (0 when absent).
    public func weight(of color: String) -> Int {
        backends.first { $0.color == color }?.weight ?? 0
    }

    /// The colours that receive traffic.
    public var serving: [Backend] { backends.filter { $0.weight > 0 } }
}
