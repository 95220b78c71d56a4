import Foundation
import OrchestratorSupport
package import Provenance

/// What the kernel says about processes (`/proc`), to stop the children a run left behind
/// without ever signalling a stranger that reuses a pid.
package enum ProcessTable {
    /// The start time of a process (field 22 of `/proc/PID/stat`, in clock ticks since boot), nil
    /// when it does not exist or is a zombie.
    package static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let fields = statFields(of: pid), fields.count > 19, fields[0] != "Z" else { return nil }
        // After the command in parentheses: state is field 3, starttime field 22.
        return UInt64(fields[19])
    }

    /// The process group of a process.
    package static func processGroup(of pid: Int32) -> Int32? {
        guard let fields = statFields(of: pid), fields.count > 2 else { return nil }
        return Int32(fields[2])
    }

    /// Fields 3... of `/proc/PID/stat` (after the command, which may contain spaces).
    private static func statFields(of pid: Int32) -> [Substring]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    // MARK: The processes of a run

    /// A run's children are found again from the kernel's process table, not only from
    /// `run.json`: that file may be unreadable (a crash, an edit) or never written (a full disk),
    /// and a grandchild that made a session of its own is in no group `run.json` names. Every
    /// process a run starts (a stage, a hook) carries its state folder in its environment, which
    /// its children inherit through fork, exec and setsid; `/proc/PID/environ` shows it without
    /// any file of ours. (A process that clears its environment is still stopped with the
    /// process group it was started in, which `run.json` names when it can be read.)
    package static let stateFolderVariable = "ORCHESTRATE_STATE_FOLDER"
    package static let releaseVariable = "ORCHESTRATE_RELEASE_ID"
    package static let roleVariable = "ORCHESTRATE_PROCESS_ROLE"
    package static let markerVariables: Set<String> = [stateFolderVariable, releaseVariable, roleVariable]

    /// The environment that marks a child of a run of the state folder `stateFolder`.
    package static func marker(stateFolder: String, releaseID: String, role: String) -> [String: String] {
        [stateFolderVariable: canonical(stateFolder), releaseVariable: releaseID, roleVariable: role]
    }

    /// The live processes marked as children of a run of `stateFolder` (this process excepted),
    /// oldest first.
    package static func marked(stateFolder: String) -> [TrackedProcess] {
        let wanted = canonical(stateFolder)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { $0 != getpid() }.compactMap { pid -> TrackedProcess? in
            let environment = self.environment(of: pid)
            guard environment[stateFolderVariable] == wanted, let start = startTime(of: pid) else { return nil }
            return TrackedProcess(pid: pid, startTime: start, role: environment[roleVariable] ?? "process")
        }.sorted { ($0.startTime, $0.pid) < ($1.startTime, $1.pid) }
    }

    /// The processes of a run to stop: those marked with its state folder, and those `run.json`
    /// names (when it could be read), each once.
    package static func processes(ofRunIn stateFolder: String, tracked: [TrackedProcess]) -> [TrackedProcess] {
        var found = marked(stateFolder: stateFolder)
        for process in tracked where !found.contains(where: { $0.pid == process.pid }) && isRunning(process) {
            found.append(process)
        }
        return found
    }

    /// The marker variables of a process's environment (the rest is not kept). At most 1 MiB is
    /// read: an environment is bounded by the kernel's ARG_MAX, but /proc says nothing of sizes.
    package static func environment(of pid: Int32) -> [String: String] {
        guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/environ") else { return [:] }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 1 << 20) else { return [:] }
        var found: [String: String] = [:]
        for entry in data.split(separator: 0) {
            let text = String(decoding: entry, as: UTF8.self)
            guard let equals = text.firstIndex(of: "=") else { continue }
            let name = String(text[..<equals])
            if markerVariables.contains(name) { found[name] = String(text[text.index(after: equals)...]) }
        }
        return found
    }

    package static func canonical(_ folder: String) -> String {
        URL(fileURLWithPath: folder).standardizedFileURL.path
    }

    /// A tracked process record for a child just started.
    package static func track(_ pid: Int32, role: String) -> TrackedProcess {
        TrackedProcess(pid: pid, startTime: startTime(of: pid) ?? 0, role: role)
    }

    /// The pids of every process in the group `group` (the children of a hook that outlived it).
    package static func members(ofGroup group: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { processGroup(of: $0) == group && startTime(of: $0) != nil }
    }

    /// Whether the tracked process, or any process of the group it led, still runs. The group is
    /// only considered when the leader is gone or is the same process (same start time): Linux
    /// never reuses a pid while a process group of that number exists.
    package static func isRunning(_ process: TrackedProcess) -> Bool {
        if let start = startTime(of: process.pid) { return start == process.startTime }
        return !members(ofGroup: process.pid).isEmpty
    }

    /// Stops the tracked process and its process group: SIGTERM, then SIGKILL after `grace`.
    /// Returns whether anything was still running.
    @discardableResult
    package static func stop(_ process: TrackedProcess, grace: Duration = .seconds(2)) async -> Bool {
        guard isRunning(process) else { return false }
        kill(-process.pid, SIGTERM)
        kill(process.pid, SIGTERM)
        let gone = (try? await poll(every: .milliseconds(50), for: grace) { isRunning(process) ? nil : true }) ?? nil
        if gone == nil {
            kill(-process.pid, SIGKILL)
            kill(process.pid, SIGKILL)
        }
        // Reap it if it is our own child.
        _ = waitpid(process.pid, nil, WNOHANG)
        return true
    }
}
