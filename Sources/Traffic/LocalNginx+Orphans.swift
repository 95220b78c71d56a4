import Foundation

extension LocalNginx {
    /// The processes that hold this configuration's control socket without a running master to
    /// answer for them: the workers of a master that was killed (kill -9, the OOM killer). They
    /// keep the listen port and serve the split they had in force, but nothing replaces one that
    /// dies and nothing can reload them. Found in the process table: every process with a socket
    /// bound at `config.controlSocket` (a path in our own runtime folder, which only our nginx
    /// binds) that is neither the master of the pid file nor one of its children.
    public func orphanedWorkers(config: NginxConfig) async -> [Int32] {
        let master = masterPID(config)
        return SocketHolders.processes(holdingUnixSocketAt: config.controlSocket).filter { pid in
            pid != master && (master == nil || SocketHolders.parent(of: pid) != master)
        }
    }

    /// Stops orphaned workers gracefully (SIGQUIT: they close their listening sockets at once and
    /// finish the requests in flight) and returns once nothing listens on the control socket any
    /// more (the port is closed with it), so a fresh nginx can bind both. SIGKILL after 5 s.
    ///
    /// - Throws: `TrafficError` when a holder is not nginx (it is never signalled) or the socket is
    ///   still held after the SIGKILL.
    public func stopOrphanedWorkers(_ workers: [Int32], config: NginxConfig) async throws {
        for pid in workers where !SocketHolders.isNginx(pid) {
            throw TrafficError(
                "process \(pid) (\(SocketHolders.command(of: pid))) holds nginx's control socket \(config.controlSocket) but is not nginx; it was left alone",
                hint: "stop it, then run the command again")
        }
        for pid in workers { kill(pid, SIGQUIT) }
        if await waitUntilReleased(config, for: .seconds(5)) { return }
        for pid in workers where SocketHolders.isNginx(pid) { kill(pid, SIGKILL) }
        if await waitUntilReleased(config, for: .seconds(2)) { return }
        let holders = SocketHolders.processes(holdingUnixSocketAt: config.controlSocket)
        throw TrafficError(
            "nginx's orphaned workers (pid \(holders.map(String.init).joined(separator: ", "))) still hold \(config.controlSocket) after SIGKILL",
            hint: "see ps -o pid,stat,cmd -p \(holders.map(String.init).joined(separator: ","))")
    }

    /// Polls every millisecond (the port is closed meanwhile, so new connections are refused)
    /// until nothing accepts connections on the control socket.
    func waitUntilReleased(_ config: NginxConfig, for timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if !SocketHolders.accepts(unixSocketAt: config.controlSocket) { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return !SocketHolders.accepts(unixSocketAt: config.controlSocket)
    }
}

/// What `/proc` says about who holds a socket. Bounded reads: `/proc/net/unix` up to 64 MiB (a
/// line per socket of the network namespace), a process's command line up to 4 KiB.
enum SocketHolders {
    /// The pids of the live processes with a file descriptor on a unix socket bound at `path`
    /// (the listening socket and the connections it accepted), in ascending order.
    static func processes(holdingUnixSocketAt path: String) -> [Int32] {
        guard let table = read("/proc/net/unix", limit: 64 << 20) else { return [] }
        let inodes = socketInodes(boundAt: path, in: table)
        guard !inodes.isEmpty else { return [] }
        let links = Set(inodes.map { "socket:[\($0)]" })
        let pids = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
        return pids.filter { pid in
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            return descriptors.contains { descriptor in
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)")).map(links.contains) == true
            }
        }.sorted()
    }

    /// Whether something accepts connections on the unix socket at `path` (a connection is made
    /// and closed at once).
    static func accepts(unixSocketAt path: String) -> Bool {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    /// The inodes of the sockets bound at `path` in a `/proc/net/unix` table
    /// (`Num RefCount Protocol Flags Type St Inode Path`, one socket a line).
    static func socketInodes(boundAt path: String, in table: String) -> [UInt64] {
        table.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: true)
            guard fields.count == 8, fields[7] == path else { return nil }
            return UInt64(fields[6])
        }
    }

    /// The parent pid (field 4 of `/proc/PID/stat`).
    static func parent(of pid: Int32) -> Int32? {
        guard let stat = read("/proc/\(pid)/stat", limit: 4096), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// The command line, arguments separated by spaces ("nginx: worker process" for a worker).
    static func command(of pid: Int32) -> String {
        (read("/proc/\(pid)/cmdline", limit: 4096) ?? "").split(separator: "\0").joined(separator: " ")
    }

    /// Whether the process runs nginx: its title (`nginx: worker process`), or before nginx sets
    /// it, its program (`/usr/sbin/nginx -p …`).
    static func isNginx(_ pid: Int32) -> Bool {
        let command = command(of: pid)
        let program = command.split(separator: " ", maxSplits: 1).first.map { $0.split(separator: "/").last ?? $0 } ?? ""
        return command.hasPrefix("nginx:") || program.hasPrefix("nginx")
    }

    /// Up to `limit` bytes of a file (files of `/proc` report no size, so it is read until its end).
    static func read(_ path: String, limit: Int) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: limit) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
