/// A split with its generation: what the controller POSTs to nginx's control socket, what it keeps
/// in the state file that a starting nginx loads, and what nginx answers to `GET /traffic`.
///
/// The text has one fact per line, the same on both sides (Resources/traffic.lua parses it):
///
///     generation 7
///     mode sticky
///     backend blue 127.0.0.1:8001 75
///     backend green 10.0.0.11:8002,10.0.0.12:8002 25
///
/// and, when a share of users sees interleaved lists, `interleave PERCENT WINDOW SEED EXPERIMENT`;
/// when a share of requests is shadowed, `shadow COLOUR PERCENT EXPERIMENT`.
public struct TrafficState: Sendable, Equatable {
    /// Grows with every split applied; nginx refuses an older one.
    public var generation: Int
    public var split: TrafficSplit

    public init(generation: Int, split: TrafficSplit) {
        self.generation = generation
        self.split = split
    }

    /// The line format; the split must be valid, with IPv4 addresses (nginx's balancer does not
    /// resolve names).
    ///
    /// - Throws: `TrafficError` when a value could not be read back or nginx would refuse it.
    public func text() throws -> String {
        guard (1...999_999_999).contains(generation) else {
            throw TrafficError("generation \(generation) is outside 1...999999999")
        }
        try split.validate()
        for backend in split.backends {
            for address in backend.addresses where !Self.isIPv4Address(address) {
                throw TrafficError(
                    "backend address \"\(address)\" is not IPv4:port (nginx's balancer takes addresses, not names)")
            }
        }
        var lines =
            ["generation \(generation)", "mode \(split.mode.rawValue)"]
            + split.backends.map { "backend \($0.color) \($0.address) \($0.weight)" }
        if let interleave = split.interleave { lines.append(interleave.line) }
        if let shadow = split.shadow { lines.append(shadow.line) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads the line format (a `config ID` line, which nginx's answers start with, is skipped).
    ///
    /// - Throws: `TrafficError` naming the line that is wrong.
    public init(parsing text: String) throws {
        var generation: Int?
        var mode: TrafficSplit.Mode?
        var backends: [TrafficSplit.Backend] = []
        var interleave: TrafficSplit.Interleave?
        var shadow: TrafficSplit.Shadow?
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.isEmpty {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            switch (fields.first, fields.count) {
            case ("config", 2):
                continue
            case ("generation", 2) where generation == nil:
                guard let value = Int(fields[1]), value > 0, fields[1].allSatisfy(\.isNumber) else {
                    throw TrafficError("line \(index + 1): generation \"\(fields[1])\" is not a positive integer")
                }
                generation = value
            case ("mode", 2) where mode == nil:
                guard let value = TrafficSplit.Mode(rawValue: fields[1]) else {
                    throw TrafficError("line \(index + 1): unknown mode \"\(fields[1])\"")
                }
                mode = value
            case ("backend", 4):
                guard let weight = Int(fields[3]), fields[3].allSatisfy(\.isNumber) else {
                    throw TrafficError("line \(index + 1): weight \"\(fields[3])\" is not a number")
                }
                backends.append(
                    .init(
                        color: fields[1],
                        addresses: fields[2].split(separator: ",", omittingEmptySubsequences: false).map(String.init),
                        weight: weight))
            case ("interleave", 5) where interleave == nil:
                guard let percent = Int(fields[1]), let window = Int(fields[2]), fields[1].allSatisfy(\.isNumber),
                    fields[2].allSatisfy(\.isNumber)
                else {
                    throw TrafficError("line \(index + 1): the interleaved share and window must be numbers")
                }
                interleave = .init(percent: percent, window: window, seed: fields[3], experiment: fields[4])
            case ("shadow", 4) where shadow == nil:
                guard let percent = Int(fields[2]), fields[2].allSatisfy(\.isNumber) else {
                    throw TrafficError("line \(index + 1): the shadowed share must be a number")
                }
                shadow = .init(color: fields[1], percent: percent, experiment: fields[3])
            default:
                throw TrafficError("line \(index + 1) is not understood: \"\(line.prefix(80))\"")
            }
        }
        guard let generation, let mode else {
            throw TrafficError("a traffic state needs a generation line and a mode line")
        }
        self.init(
            generation: generation,
            split: TrafficSplit(mode: mode, backends: backends, interleave: interleave, shadow: shadow))
        _ = try self.text()
    }

    static func isIPv4Address(_ address: String) -> Bool {
        guard let colon = address.lastIndex(of: ":") else { return false }
        let octets = address[..<colon].split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4
            && octets.allSatisfy {
                !$0.isEmpty && $0.count <= 3 && $0.allSatisfy(\.isNumber) && Int($0).map { $0 <= 255 } == true
            }
    }
}
