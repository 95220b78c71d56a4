import Foundation

/// A TCP port on 127.0.0.1 that nothing listened on a moment ago (bound, then closed), for a
/// server a test starts, or for an address that refuses connections.
public func freePort() throws -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    guard let port = bindToFreeLoopbackPort(descriptor) else { throw FreePortError() }
    return port
}

/// Binds `descriptor` to a port on 127.0.0.1 the kernel chooses, and returns that port; nil when
/// it cannot.
func bindToFreeLoopbackPort(_ descriptor: Int32) -> Int? {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
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
