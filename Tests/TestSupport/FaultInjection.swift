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
        ["LD_PRELOAD": try library(), "KILL_AT_RENAME_TARGET": suffix, "KILL_AT_RENAME_WHEN": when.rawValue]
    }

    static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <signal.h>
        #include <stdlib.h>
        #include <string.h>
        #include <unistd.h>

        static int matches(const char *path) {
            const char *suffix = getenv("KILL_AT_RENAME_TARGET");
            if (!suffix || !path) return 0;
            size_t n = strlen(path), m = strlen(suffix);
            return n >= m && strcmp(path + n - m, suffix) == 0;
        }

        int rename(const char *from, const char *to) {
            static int (*real)(const char *, const char *);
            if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
            const char *when = getenv("KILL_AT_RENAME_WHEN");
            int hit = matches(to) && when;
            if (hit && strcmp(when, "before") == 0) kill(getpid(), SIGKILL);
            int result = real(from, to);
            if (hit && strcmp(when, "after") == 0) kill(getpid(), SIGKILL);
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

/// Compiles a fault injector's C source into a shared library, once per test process.
enum PreloadLibrary {
    static func build(name: String, source: String) throws -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try source.write(toFile: folder + "/\(name).c", atomically: true, encoding: .utf8)
        let library = folder + "/\(name).so"
        var pid: pid_t = 0
        let words = ["cc", "-shared", "-fPIC", "-o", library, folder + "/\(name).c", "-ldl"]
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
