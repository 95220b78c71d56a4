import DurableFiles
import Foundation
import HTTPTransport
import TextSafety

extension NginxController {
    /// What nginx answers to `GET /traffic`: the configuration it runs and the split in force.
    struct ControlAnswer: Sendable {
        var configuration: String
        /// nil when nginx has no split (no state file when it started).
        var state: TrafficState?
    }

    /// The most of a control answer read: the configuration's path and the split, a few
    /// kilobytes (documented in the README).
    static let controlAnswerLimit = HTTPClient.BodyLimit(
        1 << 20, for: "nginx's answer on its control socket",
        hint: "is the control socket that of our nginx? `orchestrate repair` renders and restarts it")

    /// `GET /traffic` on the control socket.
    ///
    /// - Throws: `HTTPClient.TransportError` when nginx does not answer, `TrafficError` when it
    ///   answers something else than a split.
    func control() async throws -> ControlAnswer {
        let response = try await send(method: "GET")
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200, let first = text.split(separator: "\n").first, first.hasPrefix("config ") else {
            throw TrafficError(
                "nginx's control socket answered \(response.status): \(OutsideText.bounded(text, limit: 200))")
        }
        let configuration = String(first.dropFirst("config ".count))
        let rest = text.split(separator: "\n").dropFirst()
        return ControlAnswer(
            configuration: configuration,
            state: rest.isEmpty ? nil : try TrafficState(parsing: rest.joined(separator: "\n")))
    }

    func send(method: String, body: String? = nil) async throws -> HTTPClient.Response {
        try await HTTPClient.send(
            HTTPClient.Request(
                method: method, url: "http://nginx/traffic", headers: body == nil ? [] : ["Content-Type: text/plain"],
                body: body.map { .data(Data($0.utf8)) }, timeout: .seconds(3), limit: Self.controlAnswerLimit,
                unixSocket: config.controlSocket))
    }

    /// Writes `text` to a temporary file beside `path`, checks every write, flushes it to disk and
    /// renames it over `path`, so a reader (nginx starting) sees the old file or the new, whole.
    ///
    /// - Throws: `TrafficError` naming the step that failed.
    static func writeAtomically(_ text: String, to path: String) throws {
        do {
            try AtomicFile.write(Data(text.utf8), to: path)
        } catch let error as AtomicFileError {
            throw TrafficError("\(error)", cause: error)
        }
    }

    /// The split with every host name replaced by its IPv4 address: nginx's balancer takes
    /// addresses (it cannot resolve names while it picks a peer).
    ///
    /// - Throws: `TrafficError` when a name does not resolve.
    static func resolvingHostNames(_ split: TrafficSplit) throws -> TrafficSplit {
        var split = split
        for index in split.backends.indices {
            split.backends[index].addresses = try split.backends[index].addresses.map { address in
                try resolvingHostName(address, of: split.backends[index].color)
            }
        }
        return split
    }

    /// `host:port` with the host replaced by its IPv4 address (an address is kept as it is).
    static func resolvingHostName(_ address: String, of color: String) throws -> String {
        if TrafficState.isIPv4Address(address) { return address }
        guard let colon = address.lastIndex(of: ":") else {
            throw TrafficError("backend address \"\(address)\" is not host:port")
        }
        let host = String(address[..<colon])
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result,
            let socketAddress = first.pointee.ai_addr
        else {
            throw TrafficError("backend host \(host) of \(color) does not resolve to an IPv4 address")
        }
        defer { freeaddrinfo(result) }
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        var internet = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        guard inet_ntop(AF_INET, &internet, &text, socklen_t(INET_ADDRSTRLEN)) != nil else {
            throw TrafficError("cannot format the address of \(host)")
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            + address[colon...]
    }
}
