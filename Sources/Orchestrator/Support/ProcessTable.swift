import Foundation
import StrictYAML

/// What the kernel says about processes (`/proc`), to stop the children a run left behind
/// without ever signalling a stranger that reuses a pid.
enum ProcessTable {
    /// The start time of a process (field 22 of `/proc/PID/stat`, in clock ticks since boot), nil
    /// when it does not exist or is a zombie.
    static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let fields = statFields(of: pid), fields.count > 19, fields[0] != "Z" else { return nil }
        // After the command in parentheses: state is field 3, starttime field 22.
        return UInt64(fields[19])
    }

    /// The process group of a process.
    static func processGroup(of pid: Int32) -> Int32? {
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

    /// A tracked process record for a child just started.
    static func track(_ pid: Int32, role: String) -> TrackedProcess {
        TrackedProcess(pid: pid, startTime: startTime(of: pid) ?? 0, role: role)
    }

    /// The pids of every process in the group `group` (the children of a hook that outlived it).
    static func members(ofGroup group: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { processGroup(of: $0) == group && startTime(of: $0) != nil }
    }

    /// Whether the tracked process, or any process of the group it led, still runs. The group is
    /// only considered when the leader is gone or is the same process (same start time): Linux
    /// never reuses a pid while a process group of that number exists.
    static func isRunning(_ process: TrackedProcess) -> Bool {
        if let start = startTime(of: process.pid) { return start == process.startTime }
        return !members(ofGroup: process.pid).isEmpty
    }

    /// Stops the tracked process and its process group: SIGTERM, then SIGKILL after `grace`.
    /// Returns whether anything was still running.
    @discardableResult
    static func stop(_ process: TrackedProcess, grace: Duration = .seconds(2)) async -> Bool {
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
