public import Foundation
#if canImport(Glibc)
import Glibc
#endif
// As in WebhookReceiver: librdkafka's header may file the socket constants under CRdKafka.
import CRdKafka
import Synchronization

/// An HTTP server on a free loopback port that answers what a broken or hostile peer answers: a
/// body without end, a huge one streamed, a drip of a byte at a time, headers without end, a
/// redirect, text full of escape sequences. `answer` picks the answer of each request from its
/// path (with the query). One thread per connection; stopped, with its sockets closed, when
/// `with` returns, even when the test fails.
public final class HostileHTTPServer: Sendable {
    public enum Answer: Sendable {
        /// A whole answer with its Content-Length.
        case body(status: Int, contentType: String = "application/json", Data, headers: [String] = [])
        /// A body streamed without Content-Length (the end of the connection ends it): `chunk(i)`
        /// gives the i-th piece, nil when there is no more (never nil: a body without end),
        /// with `pause` between pieces (a drip).
        case stream(status: Int, contentType: String = "application/json", pause: Duration = .zero, chunk: @Sendable (Int) -> Data?)
        /// A status line, then header lines without end.
        case endlessHeaders
    }

    public let port: Int
    private let listener: Int32
    private let answer: @Sendable (String) -> Answer
    private struct State {
        var requests: [(path: String, at: Date)] = []
        var heads: [[String]] = []
        var stopped = false
        var connections: Set<Int32> = []
    }
    private let state = Mutex(State())

    private init(answer: @escaping @Sendable (String) -> Answer) throws {
        self.answer = answer
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
            throw ServerError(message: "cannot listen on loopback: errno \(errno)")
        }
        listener = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    struct ServerError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Runs `body` with a started server and stops it afterwards.
    public static func with<T>(_ answer: @escaping @Sendable (String) -> Answer, _ body: (HostileHTTPServer) async throws -> T) async throws -> T {
        let server = try HostileHTTPServer(answer: answer)
        let thread = Thread { [server] in server.acceptLoop() }
        thread.start()
        defer { server.stop() }
        return try await body(server)
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The paths (with their queries) asked so far.
    public var paths: [String] { state.withLock { $0.requests.map(\.path) } }

    /// The requests so far: path (with its query) and when it arrived.
    public var requests: [(path: String, at: Date)] { state.withLock { $0.requests } }

    /// The head of every request so far: its request line, then its header lines as sent.
    public var heads: [[String]] { state.withLock { $0.heads } }

    private func stop() {
        let open = state.withLock { state -> Set<Int32> in
            state.stopped = true
            return state.connections
        }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        // Ends the writers of bodies without end; each closes its own descriptor.
        for connection in open { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func acceptLoop() {
        while !stopped {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else {
                if stopped { return }
                continue
            }
            let registered = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.connections.insert(connection)
                return true
            }
            guard registered else {
                close(connection)
                return
            }
            let thread = Thread { [self] in
                serve(connection)
                state.withLock { _ = $0.connections.remove(connection) }
                close(connection)
            }
            thread.start()
        }
    }

    private func serve(_ connection: Int32) {
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
        let path = requestLine.count > 1 ? String(requestLine[1]) : ""
        state.withLock {
            $0.requests.append((path, Date()))
            $0.heads.append(head)
        }
        switch answer(path) {
        case .body(let status, let contentType, let body, let headers):
            let head = (["HTTP/1.1 \(status) Status", "Content-Type: \(contentType)", "Content-Length: \(body.count)", "Connection: close"] + headers)
                .joined(separator: "\r\n") + "\r\n\r\n"
            _ = write(Data(head.utf8), to: connection) && write(body, to: connection)
        case .stream(let status, let contentType, let pause, let chunk):
            let head = "HTTP/1.1 \(status) Status\r\nContent-Type: \(contentType)\r\nConnection: close\r\n\r\n"
            guard write(Data(head.utf8), to: connection) else { return }
            var index = 0
            while !stopped, let piece = chunk(index) {
                guard write(piece, to: connection) else { return }
                index += 1
                if pause > .zero { Thread.sleep(forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18) }
            }
        case .endlessHeaders:
            guard write(Data("HTTP/1.1 200 OK\r\n".utf8), to: connection) else { return }
            let line = Data("X-Filler: \(String(repeating: "x", count: 1000))\r\n".utf8)
            while !stopped, write(line, to: connection) {}
        }
    }

    /// Writes all of `data`; false once the peer is gone.
    private func write(_ data: Data, to connection: Int32) -> Bool {
        data.withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return true }
            var offset = 0
            while offset < bytes.count {
                let sent = send(connection, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
                guard sent > 0 else { return false }
                offset += sent
            }
            return true
        }
    }
}

extension HostileHTTPServer.Answer {
    /// A JSON answer of `status`.
    public static func json(_ text: String, status: Int = 200) -> Self {
        .body(status: status, Data(text.utf8))
    }

    /// A body of `byte` without end, 64 KiB at a time.
    public static func endless(status: Int = 200, byte: UInt8 = UInt8(ascii: "x")) -> Self {
        let piece = Data(repeating: byte, count: 64 << 10)
        return .stream(status: status) { _ in piece }
    }

    /// A Prometheus vector of `count` series (about 70 bytes each, a million series about 70 MB),
    /// streamed as it is written, never held whole.
    /// With `spaced`, the JSON has spaces after its colons, as a proxy may write it.
    public static func prometheusVector(series count: Int, value: String = "1", spaced: Bool = false) -> Self {
        let perChunk = 1_000
        return .stream(status: 200) { index in
            if index == 0 { return Data(#"{"status":"success","data":{"resultType":"vector","result":["#.utf8) }
            let first = (index - 1) * perChunk
            guard first < count else { return index == (count + perChunk - 1) / perChunk + 1 ? Data("]}}".utf8) : nil }
            var text = ""
            for series in first..<min(count, first + perChunk) {
                let entry = #"{"metric":{"__name__":"up","instance":"host-\#(series)"},"value":[1700000000,"\#(value)"]}"#
                text += (series == 0 ? "" : ",") + (spaced ? entry.replacingOccurrences(of: "\":", with: "\": ") : entry)
            }
            return Data(text.utf8)
        }
    }

    /// A Prometheus answer of one sample.
    public static func prometheusValue(_ value: String) -> Self {
        .json(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"\#(value)"]}]}}"#)
    }
}
