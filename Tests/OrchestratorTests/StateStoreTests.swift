import DeploymentRuntimes
import DurableFiles
import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import RecEngine
import RecEngineContract
import Testing

/// The controller's state files: read loudly, written whole, and the model store checked.
@Suite struct StateStoreTests {
    static let live = LiveRelease(
        color: "blue", releaseID: "rel-1", modelSHA256: String(repeating: "a", count: 64), modelVersion: "v1")

    @Test(arguments: [Data(), Data("{\"color\": \"blu".utf8), Data("[]".utf8), Data("{\"color\": \"blue\"}".utf8)])
    func anUnreadableLiveReleaseIsAnErrorNamingTheFileNeverNothingLive(bytes: Data) async throws {
        try await withTemporaryDirectory { folder in
            let store = StateStore(folder: folder)
            #expect(try store.live() == nil, "no file: nothing was released yet")
            try store.setLive(Self.live)
            #expect(try store.live() == Self.live)
            try bytes.write(to: URL(fileURLWithPath: store.livePath))
            let error = #expect(throws: OrchestratorError.self) { try store.live() }
            #expect(error?.code == .unreadableState)
            #expect(error?.code.exitCode == 2)
            #expect(error?.message.contains(store.livePath) == true)
            #expect(error?.hint?.contains("orchestrate repair") == true)
        }
    }

    @Test func aFolderWhereTheFileShouldBeIsAnErrorToo() async throws {
        try await withTemporaryDirectory { folder in
            let store = StateStore(folder: folder)
            try FileManager.default.createDirectory(atPath: store.livePath, withIntermediateDirectories: true)
            #expect(throws: OrchestratorError.self) { try store.live() }
        }
    }

    @Test func anUnreadableFileIsMovedAsideNotLost() async throws {
        try await withTemporaryDirectory { folder in
            let store = StateStore(folder: folder)
            try Data("garbage".utf8).write(to: URL(fileURLWithPath: store.runPath))
            let moved = try store.moveAside(store.runPath)
            #expect(try store.run() == nil)
            #expect(read(moved) == "garbage")
        }
    }

    /// A full disk, for real: a 64 KiB tmpfs (needs the right to mount, which CI's machine has).
    @Test func aFullDiskLeavesThePreviousStateWholeAndSaysSo() async throws {
        try await withTemporaryDirectory { folder in
            let mountPoint = folder + "/small"
            try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
            let mounted = try await runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mountPoint])
            try #require(mounted.status == 0, "cannot mount a tmpfs here: \(mounted.stderr)")
            defer { _ = umount2(mountPoint, Int32(MNT_DETACH)) }
            let store = StateStore(folder: mountPoint + "/state")
            try store.setLive(Self.live)
            // Fill the disk.
            let filler =
                FileHandle(forWritingAtPath: mountPoint + "/filler")
                ?? {
                    FileManager.default.createFile(atPath: mountPoint + "/filler", contents: nil)
                    return FileHandle(forWritingAtPath: mountPoint + "/filler")!
                }()
            while (try? filler.write(contentsOf: Data(count: 4096))) != nil {}
            try? filler.close()
            var next = Self.live
            next.releaseID = "rel-2"
            next.modelVersion = String(repeating: "x", count: 100_000)
            let error = #expect(throws: OrchestratorError.self) { try store.setLive(next) }
            #expect(error?.message.contains("No space left on device") == true, "\(error?.message ?? "")")
            #expect(try store.live() == Self.live, "the previous content is whole")
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.folder).filter {
                $0 != "current.json"
            }
            #expect(leftovers.isEmpty, "no temporary file is left: \(leftovers)")
        }
    }

    @Test func aDamagedModelStoreCopyIsReplacedWhenReleasedAndRefusedForARollback() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/r.csv")
            let model = try RecommenderModel.train(
                on: try RatingsFile.load(path: folder + "/r.csv"),
                parameters: SVDParameters(
                    factors: 4, epochs: 3, learningRate: 0.005, regularization: 0.02, initStd: 0.1, seed: 1))
            _ = try ModelDirectory.save(model, to: folder + "/model")
            let store = ModelStore(folder: folder + "/models")
            let (path, sha256, repaired) = try store.store(modelDirectory: folder + "/model")
            #expect(!repaired)
            #expect(try store.storedModel(sha256: sha256) == path)
            // One byte of the stored copy flipped.
            let tensors = path + "/" + ModelFiles.tensors
            var bytes = try #require(FileManager.default.contents(atPath: tensors))
            bytes[bytes.count - 1] ^= 0xff
            try bytes.write(to: URL(fileURLWithPath: tensors))
            let error = #expect(throws: OrchestratorError.self) { try store.storedModel(sha256: sha256) }
            #expect(error?.message.contains("damaged") == true)
            let again = try store.store(modelDirectory: folder + "/model")
            #expect(again.repaired, "the next release of that model replaces the damaged copy")
            #expect(try store.storedModel(sha256: sha256) == path)
        }
    }

    @Test func aFolderIsReplacedWholeInOneStep() async throws {
        try await withTemporaryDirectory { folder in
            try write("old", to: folder + "/model/a")
            try write("new", to: folder + "/next/a")
            try write("new", to: folder + "/next/b")
            try AtomicFile.replaceFolder(at: folder + "/model", with: folder + "/next")
            #expect(read(folder + "/model/a") == "new" && read(folder + "/model/b") == "new")
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == ["model"],
                "the old folder is gone, nothing is left beside")
            try write("first", to: folder + "/fresh-next/a")
            try AtomicFile.replaceFolder(at: folder + "/fresh", with: folder + "/fresh-next")
            #expect(read(folder + "/fresh/a") == "first")
        }
    }
}
