import Foundation
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// An image for machines without a registry: a root filesystem made of the given programs and the
/// shared libraries `ldd` lists for them (at the same paths, the dynamic loader included), a few
/// files, and empty folders; packed with tar and imported through `POST /images/create?fromSrc=-`.
/// Users with Docker build the same images from the `Dockerfile`.
public struct RootFilesystemImage: Sendable {
    public var programs: [String]
    /// Extra files: contents by absolute path in the image.
    public var files: [String: String]
    public var folders: [String]

    public init(programs: [String], files: [String: String] = [:], folders: [String] = ["/tmp"]) {
        self.programs = programs
        self.files = files
        self.folders = folders
    }

    /// `recengine` (for the colours and containerised stages).
    public static func recengine(binary: String) -> RootFilesystemImage {
        RootFilesystemImage(programs: [binary], files: ["/etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"], folders: ["/tmp", "/model"])
    }

    /// nginx for the load balancer, with the users its workers switch to.
    public static func nginx(binary: String) -> RootFilesystemImage {
        RootFilesystemImage(
            programs: [binary],
            files: [
                "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
                "/etc/group": "root:x:0:\nwww-data:x:33:\nnogroup:x:65534:\n",
            ],
            folders: ["/tmp", "/run", "/var/log/nginx", "/var/lib/nginx"])
    }

    /// Builds the tarball and imports it as `repository` (`localhost/NAME:TAG`).
    public func importInto(_ engine: DockerEngine, repository: String) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("orchestrate-image-\(UUID().uuidString)").path
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
        for (path, contents) in files {
            try FileManager.default.createDirectory(atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(contents.utf8).write(to: URL(fileURLWithPath: root + path))
        }
        for path in folders {
            try FileManager.default.createDirectory(atPath: root + path, withIntermediateDirectories: true)
        }
        let tarball = folder + "/root.tar"
        let tar = try await Subprocess.run(
            .name("tar"), arguments: ["-C", root, "-cf", tarball, "."], output: .discarded, error: .string(limit: 1 << 16))
        guard tar.terminationStatus.isSuccess else {
            throw EngineClientError("tar failed: \(tar.standardError)")
        }
        try await engine.importImage(tarball: tarball, repository: repository)
    }

    private func copy(_ source: String, into root: String, as path: String) throws {
        let target = root + path
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if FileManager.default.fileExists(atPath: target) { return }
        // The file itself, not a symbolic link to it.
        let resolved = URL(fileURLWithPath: source).resolvingSymlinksInPath().path
        try FileManager.default.copyItem(atPath: resolved, toPath: target)
    }

    /// The absolute paths of the shared libraries a program loads, the dynamic loader included.
    func sharedLibraries(of program: String) async throws -> [String] {
        let result = try await Subprocess.run(.name("ldd"), arguments: [program], output: .string(limit: 1 << 20), error: .discarded)
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
