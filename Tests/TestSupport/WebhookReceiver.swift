// As in LoopbackListener: librdkafka's header may file the socket constants under CRdKafka.
import CRdKafka
public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

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

    private let listener: LoopbackListener
    private let behaviour: Behaviour
    private let received = Mutex([Received]())
    /// The status answered from now on, in place of `.answer`'s (nil: as the behaviour says).
    private let override = Mutex<Int?>(nil)

    private init(behaviour: Behaviour) throws {
        self.behaviour = behaviour
        listener = try LoopbackListener()
    }

    /// Runs `body` with a started receiver and stops it afterwards.
    public static func with<T>(
        _ behaviour: Behaviour = .answer(200), _ body: (WebhookReceiver) async throws -> T
    ) async throws -> T {
        let receiver = try WebhookReceiver(behaviour: behaviour)
        receiver.listener.start { [receiver] in receiver.serve($0) }
        defer { receiver.listener.stop() }
        return try await body(receiver)
    }

    public var port: Int { listener.port }
    public var url: String { "http://127.0.0.1:\(port)" }

    public var requests: [Received] { received.withLock { $0 } }

    /// Answers `status` from now on (a gate that says no, then yes).
    public func answer(_ status: Int) {
        override.withLock { $0 = status }
    }

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

    private func serve(_ connection: Int32) {
        guard let (head, rest) = LoopbackListener.readHead(connection) else { return }
        let requestLine = head.first?.split(separator: " ") ?? []
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var body = rest
        var buffer = [UInt8](repeating: 0, count: 65536)
        while body.count < length {
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return }
            body.append(contentsOf: buffer[0..<count])
        }
        let request = Received(
            method: requestLine.first.map(String.init) ?? "", path: requestLine.count > 1 ? String(requestLine[1]) : "",
            headers: headers, body: body)
        received.withLock { $0.append(request) }
        var status = 200
        switch behaviour {
        case .answer(let code):
            status = override.withLock { $0 } ?? code
        case .stall(let seconds):
            let until = Date().addingTimeInterval(seconds)
            while Date() < until && !listener.stopped { Thread.sleep(forTimeInterval: 0.05) }
        }
        let answer =
            "HTTP/1.1 \(status) \(status == 200 ? "OK" : "Status")\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        _ = LoopbackListener.write(Data(answer.utf8), to: connection)
    }
}
