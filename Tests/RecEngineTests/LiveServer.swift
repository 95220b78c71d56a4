import Foundation
import HTTPTransport
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// A Hummingbird application served for real on a free loopback port while a test talks to it
/// through the controller's own HTTP client (libcurl): the sockets, the HTTP parser and the
/// connection limits are those a caller meets, not the router alone. The server is shut down
/// gracefully, and waited for, when the test's body returns or throws.
enum LiveServer {
    /// An answer as a test reads it.
    struct Response: Sendable {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: ByteBuffer
    }

    /// Sends requests to the server on `port`.
    struct Client: Sendable {
        let port: Int

        /// The most bytes of an answer read; the server's largest (`/metrics`) is a few KiB.
        static let limit = HTTPClient.BodyLimit(
            16 << 20, for: "an answer of the server under test", hint: "is the right server on the port?")
        /// Far above any answer's time, so that a loaded machine cannot make a test fail.
        static let timeout = Duration.seconds(60)

        /// Sends `method` `uri` (a path with its query) with `headers` and `body`, then hands the
        /// answer to `testCallback`. libcurl's own `Accept`, `Content-Type` and `Expect` fields
        /// are left out unless `headers` has them, so the server sees only what the test sends.
        @discardableResult
        func execute<Return>(
            uri: String, method: HTTPRequest.Method, headers: HTTPFields = [:], body: ByteBuffer? = nil,
            testCallback: (Response) async throws -> Return = { $0 }
        ) async throws -> Return {
            var lines = headers.map { "\($0.name.rawName): \($0.value)" }
            for name in ["Accept", "Content-Type", "Expect"]
            where !headers.contains(where: { $0.name.canonicalName == name.lowercased() }) {
                // A field without a value tells libcurl not to send its own.
                lines.append("\(name):")
            }
            var request = HTTPClient.Request(
                method: method.rawValue, url: "http://127.0.0.1:\(port)\(uri)", headers: lines, timeout: Self.timeout,
                limit: Self.limit)
            if let body {
                request.body = .data(Data(body.readableBytesView))
            } else if method == .post {
                request.body = .data(Data())
            }
            let answer = try await HTTPClient.send(request)
            var fields = HTTPFields()
            for (name, value) in answer.headers {
                guard let name = HTTPField.Name(name) else { continue }
                fields.append(HTTPField(name: name, value: value))
            }
            let response = Response(
                status: HTTPResponse.Status(code: answer.status), headers: fields, body: ByteBuffer(bytes: answer.body))
            return try await testCallback(response)
        }
    }

    /// The server stopped before it listened, without an error of its own.
    struct StoppedBeforeListening: Error, CustomStringConvertible {
        var description: String { "the server under test stopped before it listened" }
    }

    /// Serves `makeApplication(onServerRunning)` on the port it binds (port 0 in its
    /// configuration: a free one) for as long as `body` runs, then shuts it down gracefully and
    /// waits for it, whether `body` returned or threw.
    ///
    /// - Parameters:
    ///   - makeApplication: builds the application; it must call `onServerRunning` with the bound port.
    ///   - body: the test, with a client of the running server.
    /// - Throws: what `body` throws, else the server's error.
    static func run<Application: ApplicationProtocol>(
        _ makeApplication: (_ onServerRunning: @escaping @Sendable (Int) async -> Void) -> Application,
        _ body: (Client) async throws -> Void
    ) async throws {
        let (ports, portsContinuation) = AsyncStream.makeStream(of: Int.self)
        let application = makeApplication { port in portsContinuation.yield(port) }
        let services = ServiceGroup(configuration: .init(services: [application], logger: application.logger))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // A server that stops before it listens ends the wait for its port.
                defer { portsContinuation.finish() }
                try await services.run()
            }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else {
                try await group.waitForAll()
                throw StoppedBeforeListening()
            }
            do {
                try await body(Client(port: port))
            } catch {
                await services.triggerGracefulShutdown()
                // The test's error says more than one the server may throw as it stops.
                try? await group.waitForAll()
                throw error
            }
            await services.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}
