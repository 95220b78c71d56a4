import Foundation
import Synchronization

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (bound, then closed), for a
/// server a test starts, or for an address that refuses connections.
///
/// Chosen below the kernel's ephemeral range (`ip_local_port_range`, 32768-60999 by default):
/// every outgoing connection takes its local port from that range, and on a busy machine one took
/// the port a test had chosen before the test's nginx could bind it ("Address already in use",
/// seen on CI). Never the same port twice in one process.
public func freePort() throws -> Int {
    let candidates = 10_000..<max(ephemeralPortRangeStart(), 10_001)
    for _ in 0..<500 {
        let port = Int.random(in: candidates)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        if bindToLoopback(descriptor, port: port) != nil { return port }
    }
    throw FreePortError()
}

private let handedOutPorts = Mutex<Set<Int>>([])

/// The first port of the kernel's ephemeral range (32768 when it cannot be read).
func ephemeralPortRangeStart() -> Int {
    let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
    return text.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
}

/// Binds `descriptor` to a port on 127.0.0.1 the kernel chooses, and returns that port; nil when
/// it cannot.
func bindToFreeLoopbackPort(_ descriptor: Int32) -> Int? {
    bindToLoopback(descriptor, port: 0)
}

/// Binds `descriptor` to `port` on 127.0.0.1 (0: one the kernel chooses), and returns the port
/// bound; nil when it cannot.
func bindToLoopback(_ descriptor: Int32, port: Int) -> Int? {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
        }
    }
    return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
}

public struct FreePortError: Error, CustomStringConvertible {
    public var description: String { "no free port on 127.0.0.1" }
}
