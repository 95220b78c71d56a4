import Foundation

/// A fault that cannot be produced from outside at an exact point: a process killed (SIGKILL)
/// just before or just after it renames a file over a given path, i.e. at a commit boundary.
///
/// This is a fake, named as such: a small `LD_PRELOAD` library, compiled from C when first used,
/// wraps glibc's `rename` in the child process only. Shipped code knows nothing of it.
public enum KillAtRename {
    public enum When: String, Sendable {
        /// The rename does not happen: the commit is lost.
        case before
        /// The rename happens: the commit is on disk, whatever came after it is not.
        case after
    }

    /// The environment that makes a child kill itself when it renames a file whose path ends
    /// with `suffix` (e.g. `/store/state.json`).
    public static func environment(suffix: String, when: When) throws -> [String: String] {
        try AtRename.environment(suffix: suffix, when: when, action: .signal(SIGKILL, to: .itself))
    }
}

/// Something done at an exact moment of a process's life: when it first renames a file over a
/// path ending with a suffix (a commit point: a state file written, a model stored). The same
/// `LD_PRELOAD` fake as `KillAtRename`; the process and its children inherit it, and each acts
/// once, at its own first matching rename.
public enum AtRename {
    public enum Recipient: String, Sendable {
        case itself, parent
    }

    public enum Action: Sendable {
        /// Sends `signal` to the process itself or to its parent; then, when `thenWait` is
        /// given, waits that long before the rename goes on (a window in which the parent acts).
        case signal(Int32, to: Recipient, thenWait: Duration? = nil)
        /// Writes `text` to the file at `path` (atomically), as another process would at that moment.
        case write(String, to: String)
    }

    /// The environment that does `action` when a file whose path ends with `suffix` is renamed.
    /// With `.before`, a SIGKILL of the process itself means the rename never happens; any other
    /// action is followed by the rename.
    public static func environment(suffix: String, when: KillAtRename.When, action: Action) throws -> [String: String] {
        var environment = [
            "LD_PRELOAD": try KillAtRename.library(), "KILL_AT_RENAME_TARGET": suffix,
            "KILL_AT_RENAME_WHEN": when.rawValue,
        ]
        switch action {
        case .signal(let signal, let recipient, let wait):
            environment["KILL_AT_RENAME_SIGNAL"] = "\(signal)"
            environment["KILL_AT_RENAME_RECIPIENT"] = recipient.rawValue
            if let wait {
                environment["KILL_AT_RENAME_WAIT_MS"] =
                    "\(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)"
            }
        case .write(let text, let path):
            environment["KILL_AT_RENAME_WRITE_PATH"] = path
            environment["KILL_AT_RENAME_WRITE_TEXT"] = text
        }
        return environment
    }
}

extension KillAtRename {

    private static let built = Result<String, any Error> { try PreloadLibrary.build(name: "at_rename") }

    static func library() throws -> String {
        try built.get()
    }
}

/// A process killed (SIGKILL) in the middle of a write: half the bytes written, then the kill, as
/// a power loss or the OOM killer cuts a write short. Wraps `write`, `pwrite` and `pwrite64` for
/// files whose path ends with a suffix; a fake, named as such, for child processes only.
public enum KillMidWrite {
    /// The environment that makes a child kill itself halfway through its first write of more than
    /// one byte to a file whose path ends with `suffix` (e.g. `/h.jsonl`).
    public static func environment(suffix: String) throws -> [String: String] {
        ["LD_PRELOAD": try built.get(), "KILL_MID_WRITE_TARGET": suffix]
    }

    private static let built = Result<String, any Error> { try PreloadLibrary.build(name: "kill_mid_write") }
}

/// Compiles a fault injector's C source into a shared library (or a small helper program into an
/// executable), once per test process.
enum PreloadLibrary {
    static func build(name: String, executable: Bool = false) throws -> String {
        guard let source = Bundle.module.path(forResource: name, ofType: "c", inDirectory: "Faults") else {
            throw FaultInjectionError("no Faults/\(name).c among TestSupport's resources")
        }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let library = folder + (executable ? "/\(name)" : "/\(name).so")
        var pid: pid_t = 0
        let words = ["cc"] + (executable ? [] : ["-shared", "-fPIC"]) + ["-o", library, source, "-ldl"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawnp(&pid, "cc", nil, nil, argv, environ) == 0 else { throw FaultInjectionError("cannot run cc") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0, FileManager.default.fileExists(atPath: library) else {
            throw FaultInjectionError("cc could not build \(library)")
        }
        return library
    }
}

struct FaultInjectionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
