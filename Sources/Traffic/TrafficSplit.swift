/// How traffic is divided between the colours: the whole desired state of the load balancer.
public struct TrafficSplit: Sendable, Codable, Equatable {
    public enum Mode: String, Sendable, Codable {
        /// The colour comes from a hash of the user id of `/recommend/{userId}`: one user sees one
        /// colour, and keeps it while that colour's weight grows.
        case sticky
        /// A weighted random choice per request.
        case weighted
    }

    public struct Backend: Sendable, Codable, Equatable {
        public var color: String
        /// host:port of every instance of the colour (one process or container, or the tasks of a
        /// Swarm service on several hosts); a request goes to one of them.
        public var addresses: [String]
        /// Percent of traffic, 0 to 100.
        public var weight: Int

        public init(color: String, addresses: [String], weight: Int) {
            self.color = color
            self.addresses = addresses
            self.weight = weight
        }

        public init(color: String, address: String, weight: Int) {
            self.init(color: color, addresses: [address], weight: weight)
        }

        /// The addresses as one text (comma-separated), as logs and the line format show them.
        public var address: String { addresses.joined(separator: ",") }

        enum CodingKeys: String, CodingKey {
            case color, addresses, address, weight
        }

        /// Reads `addresses`, or the single `address` that state files written before several
        /// addresses per colour hold.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            color = try container.decode(String.self, forKey: .color)
            weight = try container.decode(Int.self, forKey: .weight)
            if let addresses = try container.decodeIfPresent([String].self, forKey: .addresses) {
                self.addresses = addresses
            } else {
                addresses = [try container.decode(String.self, forKey: .address)]
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(color, forKey: .color)
            try container.encode(addresses, forKey: .addresses)
            try container.encode(weight, forKey: .weight)
        }
    }

    public var mode: Mode
    /// The colours with their weights; those at 0% receive nothing (but the subrequests of an
    /// interleaved list).
    public var backends: [Backend]
    /// A sampled share of users sees both colours' lists interleaved (nil: none does).
    public var interleave: Interleave?
    /// A sampled share of requests is also answered by a colour at 0 %, only to compare (nil: none).
    public var shadow: Shadow?

    public init(mode: Mode, backends: [Backend], interleave: Interleave? = nil, shadow: Shadow? = nil) {
        self.mode = mode
        self.backends = backends
        self.interleave = interleave
        self.shadow = shadow
    }

    /// The weight of a colour (0 when absent).
    public func weight(of color: String) -> Int {
        backends.first { $0.color == color }?.weight ?? 0
    }

    /// The colours that receive traffic.
    public var serving: [Backend] { backends.filter { $0.weight > 0 } }

    /// Checks every value that reaches nginx (colours are tokens, addresses are host:port with a
    /// plain host), so nothing from a pipeline can inject syntax, and that traffic goes somewhere.
    ///
    /// - Throws: `TrafficError` naming the first problem.
    public func validate() throws {
        guard !backends.isEmpty, backends.count <= 8 else {
            throw TrafficError("a traffic split has 1 to 8 backends, got \(backends.count)")
        }
        var colors = Set<String>()
        for backend in backends {
            guard Self.isToken(backend.color) else {
                throw TrafficError("colour \"\(backend.color)\" must be letters, digits, '_' or '-'")
            }
            guard colors.insert(backend.color).inserted else {
                throw TrafficError("colour \(backend.color) appears twice in a traffic split")
            }
            guard (0...100).contains(backend.weight) else {
                throw TrafficError("weight \(backend.weight) of \(backend.color) is outside 0...100")
            }
            guard (1...Self.maximumAddresses).contains(backend.addresses.count) else {
                throw TrafficError(
                    "\(backend.color) has \(backend.addresses.count) addresses; a colour has 1 to \(Self.maximumAddresses)"
                )
            }
            for address in backend.addresses { try Self.check(address: address) }
        }
        guard !serving.isEmpty else {
            throw TrafficError("a traffic split must send traffic somewhere: every weight is 0")
        }
        guard serving.map(\.weight).reduce(0, +) == 100 else {
            throw TrafficError(
                "weights must add up to 100, got \(backends.map { "\($0.color) \($0.weight)" }.joined(separator: ", "))"
            )
        }
        try interleave?.validate(backends: backends.count)
        try shadow?.validate(in: self)
    }

    /// The most addresses one colour may have (Resources/traffic.lua's MAX_PEERS).
    public static let maximumAddresses = 32

    static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 63
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
    }

    static func check(host: String, what: String) throws {
        let ok =
            !host.isEmpty && host.count <= 253
            && host.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }
        guard ok else { throw TrafficError("\(what) \"\(host)\" is not a plain host name or IPv4 address") }
    }

    static func check(address: String) throws {
        guard let colon = address.lastIndex(of: ":"), case let digits = address[address.index(after: colon)...],
            !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let port = Int(digits),
            (1...65535).contains(port)
        else {
            throw TrafficError("backend address \"\(address)\" is not host:port")
        }
        try check(host: String(address[..<colon]), what: "backend host")
    }
}
