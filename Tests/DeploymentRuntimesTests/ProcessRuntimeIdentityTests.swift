import Foundation
import TestSupport
import Testing

@testable import DeploymentRuntimes

/// A pid in a colour's state file is that colour's server only while a `recengine serve` of that
/// state file runs under it: pids are recycled (at 32768 here), also by another colour's or
/// another service's server, which must never be taken for this colour nor stopped with it.
@Suite struct ProcessRuntimeIdentityTests {
    /// A process whose command line reads as `recengine serve --state-file STATE`.
    static func fakeServer(stateFile: String) throws -> ChildProcess {
        try ChildProcess.spawn(
            "/usr/bin/python3",
            [
                "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_DFL); time.sleep(60)  # recengine",
                "serve", "--state-file", stateFile,
            ])
    }

    static func writeState(pid: Int32, to path: String) throws {
        let state = #"{"pid":\#(pid),"port":9,"model_sha256":"abc","color":"blue","model_version":"abc"}"#
        try write(state, to: path)
    }

    @Test func aRecycledPidServingAnotherStateFileIsNeitherTheColourNorStopped() async throws {
        try await withTemporaryDirectory { folder in
            let runtime = ProcessRuntime(stateFolder: folder, recengine: "/bin/false")
            let stranger = try Self.fakeServer(stateFile: folder + "/other-service/blue.json")
            defer { stranger.signal(SIGKILL) }
            // blue's server exited; its pid now belongs to another service's server.
            try Self.writeState(pid: stranger.pid, to: folder + "/blue.json")
            #expect(await runtime.instance(of: "blue") == nil, "another service's server is not blue")
            try await runtime.stop(color: "blue")
            // A signal sent would have ended it by now.
            try await Task.sleep(for: .milliseconds(500))
            let stat = (try? String(contentsOfFile: "/proc/\(stranger.pid)/stat", encoding: .utf8)) ?? ""
            #expect(!stat.isEmpty && !stat.contains(") Z "), "stopping blue left the stranger running: \(stat)")
            #expect(!FileManager.default.fileExists(atPath: folder + "/blue.json"), "the stale state file is gone")
        }
    }

    @Test func theColoursOwnServerIsFoundAndStopped() async throws {
        try await withTemporaryDirectory { folder in
            let runtime = ProcessRuntime(stateFolder: folder, recengine: "/bin/false")
            let own = try Self.fakeServer(stateFile: folder + "/blue.json")
            try Self.writeState(pid: own.pid, to: folder + "/blue.json")
            let found = await runtime.instance(of: "blue")
            let cmdline = (FileManager.default.contents(atPath: "/proc/\(own.pid)/cmdline") ?? Data()).map {
                $0 == 0 ? " " : String(UnicodeScalar($0))
            }.joined()
            #expect(found?.pid == own.pid, "found \(String(describing: found?.pid)); its command line: \(cmdline)")
            let clock = ContinuousClock()
            let start = clock.now
            try await runtime.stop(color: "blue")
            // A SIGTERM stops it at once (the stop waits 10 s before SIGKILL).
            #expect(clock.now - start < .seconds(8), "stopped only after \(clock.now - start)")
            _ = await own.exit(killingAfter: .seconds(20))
            #expect(await runtime.instance(of: "blue") == nil)
        }
    }
}
