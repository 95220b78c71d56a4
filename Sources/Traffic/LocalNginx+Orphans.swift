import CProcessDescriptors
import Foundation
import TextSafety

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

    /// Replaces orphaned workers with a fresh nginx without closing the port for a moment, the way
    /// nginx's own binary upgrade hands its sockets over: the listening sockets (the port and the
    /// control socket) are copied from a worker (pidfd_getfd) and given to a fresh master in the
    /// `NGINX` environment variable; once its worker runs, both accept on the same sockets, and
    /// the orphans are stopped (SIGQUIT: they finish their requests). Where the sockets cannot be
    /// copied (Linux before 5.6, or no ptrace access to the workers), the orphans are stopped first
    /// and the fresh nginx binds anew: new connections are refused for the milliseconds between.
    ///
    /// - Throws: `TrafficError` when a holder of the socket is not nginx (it is left alone), or the
    ///   fresh nginx does not start (the orphans then serve on).
    public func replaceOrphanedWorkers(_ workers: [Int32], configPath: String, config: NginxConfig) async throws {
        try refuseStrangers(workers, config: config)
        guard handsOverSockets, let sockets = copyListeningSockets(from: workers, config: config) else {
            try await stopOrphanedWorkers(workers, config: config)
            try? FileManager.default.removeItem(atPath: config.controlSocket)
            try await start(configPath: configPath, config: config)
            return
        }
        defer { sockets.forEach { close($0) } }
        let master = try spawnMaster(inheriting: sockets, configPath: configPath, config: config)
        guard await waitForWorker(of: master, config: config, for: .seconds(10)) else {
            kill(master, SIGKILL)
            _ = waitpid(master, nil, 0)
            let log = OutsideText.tail(ofFile: config.errorLog, lines: 4)
            throw TrafficError(
                "a fresh nginx given the sockets of the orphaned workers did not start; they serve on:\n\(log)",
                hint: "see \(config.errorLog)")
        }
        try await stopOrphanedWorkers(
            workers, config: config, released: { workers.allSatisfy { !SocketHolders.isAlive($0) } })
    }

    /// Stops orphaned workers gracefully (SIGQUIT: they close their listening sockets at once and
    /// finish the requests in flight) and returns once nothing listens on the control socket any
    /// more (the port is closed with it), so a fresh nginx can bind both. SIGKILL after 5 s.
    ///
    /// - Throws: `TrafficError` when a holder is not nginx (it is never signalled) or the workers
    ///   are still there after the SIGKILL.
    func stopOrphanedWorkers(_ workers: [Int32], config: NginxConfig, released: (() -> Bool)? = nil) async throws {
        try refuseStrangers(workers, config: config)
        let released = released ?? { !SocketHolders.accepts(unixSocketAt: config.controlSocket) }
        for pid in workers { kill(pid, SIGQUIT) }
        if await poll(released, for: .seconds(5)) { return }
        for pid in workers where SocketHolders.isNginx(pid) { kill(pid, SIGKILL) }
        if await poll(released, for: .seconds(2)) { return }
        let left = workers.filter(SocketHolders.isAlive).map(String.init)
        throw TrafficError(
            "nginx's orphaned workers (pid \(left.joined(separator: ", "))) still hold \(config.controlSocket) after SIGKILL",
            hint: "see ps -o pid,stat,cmd -p \(left.joined(separator: ","))")
    }

    /// Polls `done` every millisecond (when the port is closed meanwhile, new connections are
    /// refused) until it holds or `timeout` passes.
    func poll(_ done: () -> Bool, for timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if done() { return true }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return done()
    }

    /// - Throws: `TrafficError` when one of the processes is not nginx: it is never signalled.
    func refuseStrangers(_ workers: [Int32], config: NginxConfig) throws {
        for pid in workers where !SocketHolders.isNginx(pid) && SocketHolders.isAlive(pid) {
            throw TrafficError(
                "process \(pid) (\(SocketHolders.command(of: pid))) holds nginx's control socket \(config.controlSocket) but is not nginx; it was left alone",
                hint: "stop it, then run the command again")
        }
    }

    /// Copies of the listening sockets of our configuration (the listen port, then the control
    /// socket) from the first worker that has both; nil when they cannot be copied.
    func copyListeningSockets(from workers: [Int32], config: NginxConfig) -> [Int32]? {
        let port = SocketHolders.listeningTCPInodes(port: config.listenPort)
        let control = SocketHolders.listeningUnixInodes(boundAt: config.controlSocket)
        for worker in workers {
            let descriptors = SocketHolders.descriptors(of: worker)
            guard let portDescriptor = descriptors.first(where: { port.contains($0.inode) })?.descriptor,
                let controlDescriptor = descriptors.first(where: { control.contains($0.inode) })?.descriptor
            else { continue }
            let copies = [portDescriptor, controlDescriptor].map { process_descriptor_copy(worker, $0) }
            if copies.allSatisfy({ $0 >= 0 }) { return copies }
            copies.filter { $0 >= 0 }.forEach { close($0) }
        }
        return nil
    }

    /// Starts a master in the foreground of a session of its own (an nginx given sockets in
    /// `NGINX` does not daemonize), with the sockets at descriptors 3, 4, … and nothing else of
    /// this process open.
    func spawnMaster(inheriting sockets: [Int32], configPath: String, config: NginxConfig) throws -> Int32 {
        // Moved above every number in play first, so that no copy is overwritten before it moved.
        let above = max(sockets.max() ?? 2, Int32(2 + sockets.count)) + 1
        let staging = sockets.indices.map { above + Int32($0) }
        let targets = sockets.indices.map { 3 + Int32($0) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // glibc's POSIX_SPAWN_SETSID (spawn.h), which Swift does not see without _GNU_SOURCE.
        posix_spawnattr_setflags(&attributes, 0x80)
        _ = process_spawn_default_signals(&attributes)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for (socket, stage) in zip(sockets, staging) { posix_spawn_file_actions_adddup2(&actions, socket, stage) }
        for (stage, target) in zip(staging, targets) { posix_spawn_file_actions_adddup2(&actions, stage, target) }
        _ = process_spawn_close_from(&actions, 3 + Int32(sockets.count))
        let arguments = [nginx, "-p", config.runtimeFolder + "/", "-e", config.errorLog, "-c", configPath]
        let inherited = "NGINX=" + targets.map { "\($0);" }.joined()
        var environment = ProcessInfo.processInfo.environment.filter { $0.key != "NGINX" }.map {
            "\($0.key)=\($0.value)"
        }
        environment.append(inherited)
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, nginx, &actions, &attributes, argv, envp)
        guard result == 0 else { throw TrafficError("cannot start \(nginx): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Waits until `master` wrote the pid file and runs a worker.
    func waitForWorker(of master: Int32, config: NginxConfig, for timeout: Duration) async -> Bool {
        await poll(
            {
                masterPID(config) == master
                    && SocketHolders.children(of: master).contains {
                        SocketHolders.command(of: $0).contains("worker process")
                    }
            }, for: timeout)
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
                (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(descriptor)")).map(
                    links.contains) == true
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
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    /// The inodes of the listening sockets bound at `path` (flag `__SO_ACCEPTCON`), from
    /// `/proc/net/unix`.
    static func listeningUnixInodes(boundAt path: String) -> Set<UInt64> {
        guard let table = read("/proc/net/unix", limit: 64 << 20) else { return [] }
        return Set(
            table.split(separator: "\n").dropFirst().compactMap { line in
                let fields = line.split(separator: " ", maxSplits: 7, omittingEmptySubsequences: true)
                guard fields.count == 8, fields[7] == path, let flags = UInt32(fields[3], radix: 16),
                    flags & 0x10000 != 0
                else { return nil }
                return UInt64(fields[6])
            })
    }

    /// The inodes of the TCP sockets listening on `port` (any address, IPv4 or IPv6).
    static func listeningTCPInodes(port: Int) -> Set<UInt64> {
        var inodes: Set<UInt64> = []
        for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
            for line in (read(file, limit: 64 << 20) ?? "").split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count > 9, fields[3] == "0A", let colon = fields[1].lastIndex(of: ":"),
                    Int(fields[1][fields[1].index(after: colon)...], radix: 16) == port, let inode = UInt64(fields[9])
                else { continue }
                inodes.insert(inode)
            }
        }
        return inodes
    }

    /// A process's socket descriptors with the socket's inode.
    static func descriptors(of pid: Int32) -> [(descriptor: Int32, inode: UInt64)] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).compactMap { name in
            guard let descriptor = Int32(name),
                let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(name)"),
                link.hasPrefix("socket:["), link.hasSuffix("]"),
                let inode = UInt64(link.dropFirst("socket:[".count).dropLast())
            else { return nil }
            return (descriptor, inode)
        }
    }

    /// The live processes whose parent is `parent`.
    static func children(of master: Int32) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }.filter {
            parent(of: $0) == master && isAlive($0)
        }
    }

    /// Alive and not a zombie.
    static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 && !(read("/proc/\(pid)/stat", limit: 4096) ?? "").contains(") Z ")
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
        let program =
            command.split(separator: " ", maxSplits: 1).first.map { $0.split(separator: "/").last ?? $0 } ?? ""
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
