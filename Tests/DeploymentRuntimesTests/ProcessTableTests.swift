import Foundation
import Provenance
import TestSupport
import Testing

@testable import DeploymentRuntimes

/// What `/proc` says about a run's processes: found by the marker in their environment, never a
/// stranger's.
@Suite struct ProcessTableTests {
    @Test func aRunsProcessesAreFoundByTheirMarkerWithoutAnyFile() async throws {
        try await withTemporaryDirectory { folder in
            let marker = ProcessTable.marker(
                stateFolder: folder + "/state/svc/", releaseID: "rel-4", role: "during-step hook 0 load.sh")
            let marked = try ChildProcess.spawn("/bin/sleep", ["30"], environment: marker)
            let unmarked = try ChildProcess.spawn("/bin/sleep", ["30"])
            let other = try ChildProcess.spawn(
                "/bin/sleep", ["30"],
                environment: ProcessTable.marker(stateFolder: folder + "/other", releaseID: "rel-5", role: "stage x"))
            let found = ProcessTable.marked(stateFolder: folder + "/state/svc")
            #expect(
                found.map(\.pid) == [marked.pid], "only the run's own process, whatever the path's spelling: \(found)")
            #expect(found.first?.role == "during-step hook 0 load.sh")
            #expect(found.first.map(ProcessTable.isRunning) == true)
            for child in [marked, unmarked, other] {
                child.signal(SIGKILL)
                _ = await child.wait()
            }
            #expect(ProcessTable.marked(stateFolder: folder + "/state/svc").isEmpty)
        }
    }
}
