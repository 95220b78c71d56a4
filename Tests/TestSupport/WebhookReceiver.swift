public import Foundation
#if canImport(Glibc)
import Glibc
#endif
// Where this module also imports librdkafka, whose header includes <sys/socket.h>, the compiler
// may file the socket constants under CRdKafka: importing both keeps them in scope either way.
import CRdKafka
import Synchronization

/// A real HTTP receiver on a free loopback port for the notification and metrics tests: it
/// records every request (method, path, headers, body) and answers with a status, or stalls
/// before answering (a slow receiver). One thread per connection; stopped, with its socket
/// closed, when `with` returns, even when the test fails.
public final class WebhookReceiver: Sendable {
    public struct Received: Sendable {
        public var method: String
        public var path: String
        /// Header names in lower case.
        public var headers: [String: String]
        public var body: Data

        /// The body parsed as a JSON object (nil when it is not one).
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] }
    }

    public enum Behaviour: Sendable {
        /// Answer at once with this status.
        case answer(Int)
        /// Record the request, then wait this long before answering 200 (or until stopped).
        case stall(seconds: Double)
    }

    public let port: Int
    private let listener: Int32
    private let behaviour: Behaviour
    private struct State {
        var requests: [Received] = []
        var stopped = false
    }
    private let state = Mutex(State())

    private init(behaviour: Behaviour) throws {
        self.behaviour = behaviour
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 && listen(descriptor, 64) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw ReceiverError(message: "cannot listen on loopback: errno \(errno)")
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    struct ReceiverError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Runs `body` with a started receiver and stops it afterwards.
    public static func with<T>(_ behaviour: Behaviour = .answer(200), _ body: (WebhookReceiver) async throws -> T) async throws -> T {
        let receiver = try WebhookReceiver(behaviour: behaviour)
        let thread = Thread { [receiver] in receiver.acceptLoop() }
        thread.start()
        defer { receiver.stop() }
        return try await body(receiver)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    public var requests: [Received] { state.withLock { $0.requests } }

    /// The requests, once at least `count` arrived or `timeout` passed.
    public func requests(atLeast count: Int, within timeout: Duration = .seconds(10)) async -> [Received] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let received = requests
            if received.count >= count { return received }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return requests
    }

    private func stop() {
        state.withLock { $0.stopped = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        while !stopped {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                if stopped { return }
                continue
            }
            let thread = Thread { [self] in serve(connection) }
            thread.start()
        }
    }

    private func serve(_ connection: Int32) {
        defer { close(connection) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Range<Data.Index>?
        while headerEnd == nil {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return }
            data.append(contentsOf: buffer[0..<count])
            headerEnd = data.range(of: Data("\r\n\r\n".utf8))
        }
        guard let headerEnd else { return }
        let head = String(decoding: data[..<headerEnd.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = head.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var body = Data(data[headerEnd.upperBound...])
        while body.count < length {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return }
            body.append(contentsOf: buffer[0..<count])
        }
        let request = Received(
            method: requestLine.first.map(String.init) ?? "", path: requestLine.count > 1 ? String(requestLine[1]) : "", headers: headers, body: body)
        state.withLock { $0.requests.append(request) }
        var status = 200
        switch behaviour {
        case .answer(let code):
            status = code
        case .stall(let seconds):
            let until = Date().addingTimeInterval(seconds)
            while Date() < until && !stopped { Thread.sleep(forTimeInterval: 0.05) }
        }
        let answer = "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Status")\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        _ = answer.withCString { send(connection, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }
}
