import Foundation
import Testing

@testable import Traffic

/// Finding the processes that hold nginx's control socket, which is how workers left serving by a
/// killed master are found.
@Suite struct SocketHoldersTests {
    @Test func theInodesOfTheSocketsBoundAtAPathAreReadFromTheTable() {
        let table = """
            Num       RefCount Protocol Flags    Type St Inode Path
            0000000000000000: 00000002 00000000 00010000 0001 01 54646 /tmp/run/control.sock
            0000000000000000: 00000003 00000000 00000000 0001 03 54700 /tmp/run/control.sock
            0000000000000000: 00000002 00000000 00010000 0001 01 12 /tmp/run/control.sock.other
            0000000000000000: 00000002 00000000 00010000 0001 01 13 @/tmp/run/control.sock
            0000000000000000: 00000003 00000000 00000000 0001 03 14
            """
        #expect(SocketHolders.socketInodes(boundAt: "/tmp/run/control.sock", in: table) == [54646, 54700])
        #expect(SocketHolders.socketInodes(boundAt: "/tmp/run/none.sock", in: table) == [])
    }

    @Test func aProcessHoldingASocketBoundAtThePathIsFound() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("holders-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/control.sock"
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [], "nothing bound yet")

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(bound == 0 && listen(descriptor, 1) == 0)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [getpid()])
        // The file removed, the socket still listens and is still found (a deleted socket file
        // is exactly what must not hide an nginx that serves).
        try FileManager.default.removeItem(atPath: path)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [getpid()])
        close(descriptor)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [])
        #expect(!SocketHolders.isNginx(getpid()))
    }
}
