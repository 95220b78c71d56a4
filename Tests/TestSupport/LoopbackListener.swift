// Where this module also imports librdkafka, whose header includes <sys/socket.h>, the compiler
// may file the socket constants under CRdKafka: importing both keeps them in scope either way.
import CRdKafka
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A listening socket on a free loopback port for the tests' HTTP peers (`WebhookReceiver`,
/// `HostileHTTPServer`): each connection is served on a thread of its own; `stop` closes the
/// socket and shuts every open connection, so that no writer or reader outlives the test.
final class LoopbackListener: Sendable {
    let port: Int
    private let descriptor: Int32
    private struct State {
        var stopped = false
        var connections: Set<Int32> = []
    }
    private let state = Mutex(State())

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        guard let port = bindToFreeLoopbackPort(descriptor), listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw ListenerError(description: "cannot listen on loopback: errno \(errno)")
        }
        self.descriptor = descriptor
        self.port = port
    }

    struct ListenerError: Error, CustomStringConvertible {
        var description: String
    }

    var stopped: Bool { state.withLock { $0.stopped } }

    /// Accepts connections on a thread of its own until stopped; `serve` runs on a thread per
    /// connection, which is closed when `serve` returns.
    func start(serving serve: @escaping @Sendable (Int32) -> Void) {
        Thread { [self] in
            while !stopped {
                let connection = accept(descriptor, nil, nil)
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
                Thread { [self] in
                    var timeout = timeval(tv_sec: 5, tv_usec: 0)
                    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                    serve(connection)
                    state.withLock { _ = $0.connections.remove(connection) }
                    close(connection)
                }.start()
            }
        }.start()
    }

    func stop() {
        let open = state.withLock { state -> Set<Int32> in
            state.stopped = true
            return state.connections
        }
        shutdown(descriptor, Int32(SHUT_RDWR))
        close(descriptor)
        // Ends the writers of bodies without end and the readers that wait; each thread closes
        // its own descriptor.
        for connection in open { shutdown(connection, Int32(SHUT_RDWR)) }
    }

    /// Reads a request up to the end of its head: the request line and header lines, and the
    /// bytes that came after the head. nil when the peer closed (or went quiet for 5 s) first.
    static func readHead(_ connection: Int32) -> (lines: [String], rest: Data)? {
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let end = data.range(of: Data("\r\n\r\n".utf8)) {
                return (
                    String(decoding: data[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n"),
                    Data(data[end.upperBound...])
                )
            }
            let count = recv(connection, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            data.append(contentsOf: buffer[0..<count])
        }
    }

    /// Writes all of `data`; false once the peer is gone.
    static func write(_ data: Data, to connection: Int32) -> Bool {
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
