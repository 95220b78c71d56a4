// As in LoopbackListener: librdkafka's header may file the socket constants under CRdKafka.
import CRdKafka
public import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

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
        case stream(
            status: Int, contentType: String = "application/json", pause: Duration = .zero,
            chunk: @Sendable (Int) -> Data?)
        /// A status line, then header lines without end.
        case endlessHeaders
    }

    private let listener: LoopbackListener
    private let answer: @Sendable (String) -> Answer
    private struct Request {
        var path: String
        var at: Date
        var head: [String]
    }
    private let received = Mutex([Request]())

    private init(answer: @escaping @Sendable (String) -> Answer) throws {
        self.answer = answer
        listener = try LoopbackListener()
    }

    /// Runs `body` with a started server and stops it afterwards.
    public static func with<T>(
        _ answer: @escaping @Sendable (String) -> Answer, _ body: (HostileHTTPServer) async throws -> T
    ) async throws -> T {
        let server = try HostileHTTPServer(answer: answer)
        server.listener.start { [server] in server.serve($0) }
        defer { server.listener.stop() }
        return try await body(server)
    }

    public var port: Int { listener.port }
    public var url: String { "http://127.0.0.1:\(port)" }

    /// The paths (with their queries) asked so far.
    public var paths: [String] { received.withLock { $0.map(\.path) } }

    /// The requests so far: path (with its query) and when it arrived.
    public var requests: [(path: String, at: Date)] { received.withLock { $0.map { ($0.path, $0.at) } } }

    /// The head of every request so far: its request line, then its header lines as sent.
    public var heads: [[String]] { received.withLock { $0.map(\.head) } }

    private var stopped: Bool { listener.stopped }

    private func serve(_ connection: Int32) {
        guard let head = LoopbackListener.readHead(connection)?.lines else { return }
        let requestLine = head.first?.split(separator: " ") ?? []
        let path = requestLine.count > 1 ? String(requestLine[1]) : ""
        received.withLock { $0.append(Request(path: path, at: Date(), head: head)) }
        switch answer(path) {
        case .body(let status, let contentType, let body, let headers):
            let head =
                ([
                    "HTTP/1.1 \(status) Status", "Content-Type: \(contentType)", "Content-Length: \(body.count)",
                    "Connection: close",
                ] + headers)
                .joined(separator: "\r\n") + "\r\n\r\n"
            _ = write(Data(head.utf8), to: connection) && write(body, to: connection)
        case .stream(let status, let contentType, let pause, let chunk):
            let head = "HTTP/1.1 \(status) Status\r\nContent-Type: \(contentType)\r\nConnection: close\r\n\r\n"
            guard write(Data(head.utf8), to: connection) else { return }
            var index = 0
            while !stopped, let piece = chunk(index) {
                guard write(piece, to: connection) else { return }
                index += 1
                if pause > .zero {
                    Thread.sleep(
                        forTimeInterval: Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
                }
            }
        case .endlessHeaders:
            guard write(Data("HTTP/1.1 200 OK\r\n".utf8), to: connection) else { return }
            let line = Data("X-Filler: \(String(repeating: "x", count: 1000))\r\n".utf8)
            while !stopped, write(line, to: connection) {}
        }
    }

    private func write(_ data: Data, to connection: Int32) -> Bool { LoopbackListener.write(data, to: connection) }
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
                let entry =
                    #"{"metric":{"__name__":"up","instance":"host-\#(series)"},"value":[1700000000,"\#(value)"]}"#
                text +=
                    (series == 0 ? "" : ",") + (spaced ? entry.replacingOccurrences(of: "\":", with: "\": ") : entry)
            }
            return Data(text.utf8)
        }
    }

    /// A Prometheus answer of one sample.
    public static func prometheusValue(_ value: String) -> Self {
        .json(
            #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000,"\#(value)"]}]}}"#
        )
    }
}
