import Foundation

/// A load like wrk's: each connection is an HTTP/1.1 keep-alive connection that sends the next
/// request as soon as the answer is in and never retries. A request fails when the connection
/// cannot be made, when it is closed or reset before the whole answer arrived, or when the answer
/// is not 200; a clean `Connection: close` after an answer only opens a new connection.
///
/// Each connection runs on its own thread with blocking sockets (the cooperative pool is left
/// alone) and asks for the users `u<k>` with `k % connections == its index`, so one user's
/// requests are sequential and their order is the order nginx chose colours in.
final class KeepAliveLoad: @unchecked Sendable {
    struct Sample: Sendable {
        var user: Int
        /// `DispatchTime.now().uptimeNanoseconds` before the request was sent and after the answer.
        var started: UInt64
        var finished: UInt64
        var status: Int
        var color: String?
        var failure: String?
    }

    let port: Int
    let connections: Int
    let users: Int
    // Guarded by `lock`.
    private let lock = NSLock()
    private var storage: [Sample] = []
    private var answeredCount = 0
    private var running = true
    private let finished = DispatchGroup()

    init(port: Int, connections: Int = 8, users: Int = 4000) {
        self.port = port
        self.connections = connections
        self.users = users
    }

    func start() {
        for index in 0..<connections {
            finished.enter()
            let thread = Thread { [self] in
                run(index: index)
                finished.leave()
            }
            thread.start()
        }
    }

    /// Stops every connection and returns all samples.
    func stop() async -> [Sample] {
        lock.withLock { running = false }
        await withCheckedContinuation { continuation in
            finished.notify(queue: .global()) { continuation.resume() }
        }
        return lock.withLock { storage }
    }

    private var isRunning: Bool { lock.withLock { running } }

    /// How many requests have been answered so far.
    var answered: Int { lock.withLock { answeredCount } }

    /// Waits at least `minimum`, then until `requests` more answers arrive or `maximum` has passed:
    /// a step measured on a loaded machine still sees enough requests to judge its share.
    func waitForAnswers(_ requests: Int, minimum: Duration, maximum: Duration) async throws {
        let target = answered + requests
        let clock = ContinuousClock()
        let start = clock.now
        try await Task.sleep(for: minimum)
        while answered < target && clock.now - start < maximum {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private func run(index: Int) {
        var generator = SystemRandomNumberGenerator()
        var connection: Int32 = -1
        var buffer = [UInt8]()
        while isRunning {
            let user = Int.random(in: 0..<(users / connections), using: &generator) * connections + index
            let started = DispatchTime.now().uptimeNanoseconds
            var sample = Sample(user: user, started: started, finished: started, status: 0)
            if connection < 0 {
                connection = Self.connect(port: port)
                buffer.removeAll()
            }
            if connection < 0 {
                sample.failure = "connect: \(String(cString: strerror(errno)))"
            } else {
                let request = Array("GET /recommend/u\(user)?k=5 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
                let sent = request.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if sent != request.count {
                    sample.failure = "send: \(String(cString: strerror(errno)))"
                } else {
                    switch Self.readAnswer(connection, buffer: &buffer) {
                    case .success(let answer):
                        sample.status = answer.status
                        sample.color = answer.headers["x-model-color"]
                        if answer.status != 200 { sample.failure = "status \(answer.status)" }
                        if answer.headers["connection"]?.lowercased() == "close" {
                            close(connection)
                            connection = -1
                        }
                    case .failure(let problem):
                        sample.failure = problem.description
                    }
                }
                if sample.failure != nil && connection >= 0 {
                    close(connection)
                    connection = -1
                }
            }
            sample.finished = DispatchTime.now().uptimeNanoseconds
            lock.withLock {
                storage.append(sample)
                if sample.failure == nil { answeredCount += 1 }
            }
            if sample.failure != nil && connection < 0 { usleep(1000) }
        }
        if connection >= 0 { close(connection) }
    }

    private static func connect(port: Int) -> Int32 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return -1 }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var noDelay: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let saved = errno
            close(descriptor)
            errno = saved
            return -1
        }
        return descriptor
    }

    struct Answer {
        var status: Int
        var headers: [String: String]
    }

    struct ReadFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads one answer (Content-Length or chunked body); bytes of a next answer stay in `buffer`.
    private static func readAnswer(_ descriptor: Int32, buffer: inout [UInt8]) -> Result<Answer, ReadFailure> {
        func fill() -> ReadFailure? {
            var chunk = [UInt8](repeating: 0, count: 16_384)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                buffer.append(contentsOf: chunk[0..<count])
                return nil
            }
            return ReadFailure(
                description: count == 0
                    ? "connection closed before the whole answer" : "recv: \(String(cString: strerror(errno)))")
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            if let range = buffer.firstRange(of: separator) {
                headerEnd = range.upperBound
            } else if let failure = fill() {
                return .failure(failure)
            }
        }
        guard let headerEnd else { return .failure(ReadFailure(description: "no header")) }
        let head = String(decoding: buffer[0..<headerEnd], as: UTF8.self)
        buffer.removeFirst(headerEnd)
        let lines = head.components(separatedBy: "\r\n")
        let statusFields = lines[0].split(separator: " ")
        guard statusFields.count >= 2, let status = Int(statusFields[1]) else {
            return .failure(ReadFailure(description: "bad status line \(lines[0])"))
        }
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        if let length = headers["content-length"].flatMap({ Int($0) }) {
            while buffer.count < length {
                if let failure = fill() { return .failure(failure) }
            }
            buffer.removeFirst(length)
        } else if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    if let range = buffer.firstRange(of: Array("\r\n".utf8)) {
                        lineEnd = range.lowerBound
                    } else if let failure = fill() {
                        return .failure(failure)
                    }
                }
                guard let lineEnd,
                    let size = Int(
                        String(decoding: buffer[0..<lineEnd], as: UTF8.self).split(separator: ";")[0], radix: 16)
                else {
                    return .failure(ReadFailure(description: "bad chunk size"))
                }
                buffer.removeFirst(lineEnd + 2)
                while buffer.count < size + 2 {
                    if let failure = fill() { return .failure(failure) }
                }
                buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        return .success(Answer(status: status, headers: headers))
    }
}
