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
        var environment = ["LD_PRELOAD": try KillAtRename.library(), "KILL_AT_RENAME_TARGET": suffix, "KILL_AT_RENAME_WHEN": when.rawValue]
        switch action {
        case .signal(let signal, let recipient, let wait):
            environment["KILL_AT_RENAME_SIGNAL"] = "\(signal)"
            environment["KILL_AT_RENAME_RECIPIENT"] = recipient.rawValue
            if let wait { environment["KILL_AT_RENAME_WAIT_MS"] = "\(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)" }
        case .write(let text, let path):
            environment["KILL_AT_RENAME_WRITE_PATH"] = path
            environment["KILL_AT_RENAME_WRITE_TEXT"] = text
        }
        return environment
    }
}

extension KillAtRename {
    static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <fcntl.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>

        static int (*real)(const char *, const char *);
        static int done;

        static int matches(const char *path) {
            const char *suffix = getenv("KILL_AT_RENAME_TARGET");
            if (!suffix || !path) return 0;
            size_t n = strlen(path), m = strlen(suffix);
            return n >= m && strcmp(path + n - m, suffix) == 0;
        }

        static void act(void) {
            const char *path = getenv("KILL_AT_RENAME_WRITE_PATH");
            if (path) {
                const char *text = getenv("KILL_AT_RENAME_WRITE_TEXT");
                char temporary[4096];
                snprintf(temporary, sizeof temporary, "%s.at-rename-%d", path, (int)getpid());
                int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd >= 0) {
                    if (text) write(fd, text, strlen(text));
                    close(fd);
                    real(temporary, path);
                }
                return;
            }
            const char *signal_text = getenv("KILL_AT_RENAME_SIGNAL");
            const char *recipient = getenv("KILL_AT_RENAME_RECIPIENT");
            int signal_number = signal_text ? atoi(signal_text) : SIGKILL;
            kill(recipient && strcmp(recipient, "parent") == 0 ? getppid() : getpid(), signal_number);
            const char *wait = getenv("KILL_AT_RENAME_WAIT_MS");
            if (wait) usleep((useconds_t)atoi(wait) * 1000);
        }

        int rename(const char *from, const char *to) {
            if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
            const char *when = getenv("KILL_AT_RENAME_WHEN");
            int hit = !done && matches(to) && when;
            if (hit) done = 1;
            if (hit && strcmp(when, "before") == 0) act();
            int result = real(from, to);
            if (hit && strcmp(when, "after") == 0) act();
            return result;
        }
        """

    private static let built = Result<String, any Error> { try PreloadLibrary.build(name: "kill_at_rename", source: source) }

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

    static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <signal.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/types.h>
        #include <unistd.h>

        static int matches(int fd) {
            const char *suffix = getenv("KILL_MID_WRITE_TARGET");
            if (!suffix) return 0;
            char link[64], path[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
            ssize_t n = readlink(link, path, sizeof path - 1);
            if (n <= 0) return 0;
            path[n] = 0;
            size_t m = strlen(suffix);
            return (size_t)n >= m && strcmp(path + n - m, suffix) == 0;
        }

        ssize_t write(int fd, const void *buffer, size_t count) {
            static ssize_t (*real)(int, const void *, size_t);
            if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
            if (count > 1 && matches(fd)) {
                real(fd, buffer, count / 2);
                kill(getpid(), SIGKILL);
            }
            return real(fd, buffer, count);
        }

        static ssize_t cut(const char *name, int fd, const void *buffer, size_t count, off_t offset) {
            ssize_t (*real)(int, const void *, size_t, off_t) = (ssize_t (*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, name);
            if (count > 1 && matches(fd)) {
                real(fd, buffer, count / 2, offset);
                kill(getpid(), SIGKILL);
            }
            return real(fd, buffer, count, offset);
        }

        ssize_t pwrite(int fd, const void *buffer, size_t count, off_t offset) { return cut("pwrite", fd, buffer, count, offset); }
        ssize_t pwrite64(int fd, const void *buffer, size_t count, off_t offset) { return cut("pwrite64", fd, buffer, count, offset); }
        """

    private static let built = Result<String, any Error> { try PreloadLibrary.build(name: "kill_mid_write", source: source) }
}

/// Compiles a fault injector's C source into a shared library (or a small helper program into an
/// executable), once per test process.
enum PreloadLibrary {
    static func build(name: String, source: String, executable: Bool = false) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try source.write(toFile: folder + "/\(name).c", atomically: true, encoding: .utf8)
        let library = folder + (executable ? "/\(name)" : "/\(name).so")
        var pid: pid_t = 0
        let words = ["cc"] + (executable ? [] : ["-shared", "-fPIC"]) + ["-o", library, folder + "/\(name).c", "-ldl"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawnp(&pid, "cc", nil, nil, argv, environ) == 0 else { throw FaultInjectionError("cannot run cc") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0, FileManager.default.fileExists(atPath: library) else { throw FaultInjectionError("cc could not build \(library)") }
        return library
    }
}

struct FaultInjectionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
