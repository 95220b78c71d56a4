import CProcessDescriptors
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
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "holders-\(UUID().uuidString.prefix(8))"
        ).path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/control.sock"
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [], "nothing bound yet")

        // Close-on-exec: a child another test spawns meanwhile must not keep it open (twice it
        // did, and was found holding the socket after it was closed here).
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(descriptor >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            for (index, byte) in path.utf8.enumerated() { bytes[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        try #require(bound == 0 && listen(descriptor, 1) == 0)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [getpid()])
        let listening = SocketHolders.listeningUnixInodes(boundAt: path)
        #expect(listening.count == 1)
        #expect(
            SocketHolders.descriptors(of: getpid()).contains {
                $0.descriptor == descriptor && listening.contains($0.inode)
            })
        #expect(SocketHolders.accepts(unixSocketAt: path))
        // The file removed, the socket still listens and is still found (a deleted socket file
        // is exactly what must not hide an nginx that serves).
        try FileManager.default.removeItem(atPath: path)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [getpid()])
        close(descriptor)
        #expect(SocketHolders.processes(holdingUnixSocketAt: path) == [])
        #expect(!SocketHolders.accepts(unixSocketAt: path))
        #expect(!SocketHolders.isNginx(getpid()))
    }

    @Test func aListeningPortIsFoundAndItsSocketCopiedFromTheProcessThatHoldsIt() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        try #require(bound && listen(descriptor, 1) == 0)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let inodes = SocketHolders.listeningTCPInodes(port: port)
        #expect(inodes.count == 1)
        #expect(
            SocketHolders.descriptors(of: getpid()).contains {
                $0.descriptor == descriptor && inodes.contains($0.inode)
            })

        // pidfd_getfd: the copy is the same socket (the same inode).
        let copy = process_descriptor_copy(getpid(), descriptor)
        try #require(copy >= 0, "pidfd_getfd: \(String(cString: strerror(errno)))")
        defer { close(copy) }
        #expect(SocketHolders.descriptors(of: getpid()).contains { $0.descriptor == copy && inodes.contains($0.inode) })
        #expect(fcntl(copy, F_GETFD) & FD_CLOEXEC != 0, "the copy is close-on-exec")
    }
}
