import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// An image for machines without a registry: a root filesystem made of the given programs and the
/// shared libraries `ldd` lists for them (at the same paths, the dynamic loader included), files
/// and folders of this machine copied to the same paths (shared objects with their libraries too),
/// a few written files, and empty folders; packed with tar and imported through
/// `POST /images/create?fromSrc=-`. Users with Docker build the same images from the `Dockerfile`.
public struct RootFilesystemImage: Sendable {
    public var programs: [String]
    /// Files and folders of this machine, copied to the same absolute path in the image; for a
    /// shared object (`.so`), the libraries it loads are copied too.
    public var copies: [String]
    /// Extra files: contents by absolute path in the image.
    public var files: [String: String]
    public var folders: [String]

    public init(programs: [String], copies: [String] = [], files: [String: String] = [:], folders: [String] = ["/tmp"])
    {
        self.programs = programs
        self.copies = copies
        self.files = files
        self.folders = folders
    }

    /// `recengine` (for the colours and containerised stages).
    public static func recengine(binary: String) -> RootFilesystemImage {
        RootFilesystemImage(
            programs: [binary], files: ["/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"], folders: ["/tmp", "/model"])
    }

    /// Where Debian's lua-resty-core and lua-resty-lrucache put the Lua code the nginx Lua module
    /// loads at start (its default `lua_package_path` is `/usr/share/lua/5.1/?.lua`).
    public static let restyLuaFolders = ["/usr/share/lua/5.1/ngx", "/usr/share/lua/5.1/resty"]

    /// nginx for the load balancer, with its dynamic modules (the Lua module and the NDK, at the
    /// paths the rendered configuration loads them from) and their libraries (luajit), the
    /// lua-resty-core and lua-resty-lrucache code, and the users its workers switch to.
    public static func nginx(binary: String, modules: [String]) -> RootFilesystemImage {
        RootFilesystemImage(
            programs: [binary],
            copies: modules + restyLuaFolders,
            files: [
                "/etc/passwd":
                    "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "/etc/group": "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
            ],
            folders: ["/tmp", "/run", "/var/log/nginx", "/var/lib/nginx"])
    }

    /// Builds the tarball and imports it as `repository` (`localhost/NAME:TAG`).
    public func importInto(_ engine: DockerEngine, repository: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "orchestrate-image-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let root = folder + "/root"
        for program in programs {
            guard FileManager.default.isExecutableFile(atPath: program) else {
                throw EngineClientError("\(program) is not an executable file", hint: "build it first (swift build)")
            }
            let target = program.hasPrefix("/") ? program : FileManager.default.currentDirectoryPath + "/" + program
            try copy(target, into: root, as: "/usr/local/bin/" + (program as NSString).lastPathComponent)
            for library in try await sharedLibraries(of: target) {
                try copy(library, into: root, as: library)
            }
        }
        for path in copies {
            guard path.hasPrefix("/"), FileManager.default.fileExists(atPath: path) else {
                throw EngineClientError(
                    "\(path) is missing on this machine; the image needs it",
                    hint: "install what provides it (the nginx image: apt-get install libnginx-mod-http-lua)")
            }
            try copyTree(path, into: root)
            if path.hasSuffix(".so") {
                for library in try await sharedLibraries(of: path) {
                    try copy(library, into: root, as: library)
                }
            }
        }
        for (path, contents) in files {
            try FileManager.default.createDirectory(
                atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: URL(fileURLWithPath: root + path))
        }
        for path in folders {
            try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
        }
        let tarball = folder + "/root.tar"
        let tar = try await Subprocess.run(
            .name("tar"), arguments: ["-C", root, "-cf", tarball, "."], output: .discarded,
            error: .string(limit: 1 << 16))
        guard tar.terminationStatus.isSuccess else {
            throw EngineClientError("tar failed: \(tar.standardError)")
        }
        try await engine.importImage(tarball: tarball, repository: repository)
    }

    private func copy(_ source: String, into root: String, as path: String) throws {
        let target = root + path
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: target) { return }
        // The file itself, not a symbolic link to it.
        let resolved = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
        try FileManager.default.copyItem(atPath: resolved, toPath: target)
    }

    /// Copies a file, or a folder with everything in it, to the same path under `root`.
    private func copyTree(_ path: String, into root: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue else {
            return try copy(path, into: root, as: path)
        }
        for entry in try FileManager.default.subpathsOfDirectory(atPath: path) {
            var entryIsFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: path + "/" + entry, isDirectory: &entryIsFolder),
                !entryIsFolder.boolValue
            {
                try copy(path + "/" + entry, into: root, as: path + "/" + entry)
            }
        }
    }

    /// The absolute paths of the shared libraries a program loads, the dynamic loader included.
    func sharedLibraries(of program: String) async throws -> [String] {
        let result = try await Subprocess.run(
            .name("ldd"), arguments: [program], output: .string(limit: 1 << 20), error: .discarded)
        let output = result.standardOutput
        guard result.terminationStatus.isSuccess else {
            throw EngineClientError("ldd cannot read \(program): is it a dynamically linked program?")
        }
        return output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let arrow = fields.firstIndex(of: "=>"), arrow + 1 < fields.count, fields[arrow + 1].hasPrefix("/") {
                return String(fields[arrow + 1])
            }
            if let first = fields.first, first.hasPrefix("/") { return String(first) }
            return nil
        }
    }
}
