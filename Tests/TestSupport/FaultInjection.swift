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

    private static let built = Result<String, any Error> {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kill-at-rename-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try source.write(toFile: folder + "/kill_at_rename.c", atomically: true, encoding: .utf8)
        let library = folder + "/kill_at_rename.so"
        var pid: pid_t = 0
        let words = ["cc", "-shared", "-fPIC", "-o", library, folder + "/kill_at_rename.c", "-ldl"]
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        guard posix_spawnp(&pid, "cc", nil, nil, argv, environ) == 0 else { throw FaultInjectionError("cannot run cc") }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        guard status == 0, FileManager.default.fileExists(atPath: library) else { throw FaultInjectionError("cc could not build \(library)") }
        return library
    }

    static func library() throws -> String {
        try built.get()
    }
}

struct FaultInjectionError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
