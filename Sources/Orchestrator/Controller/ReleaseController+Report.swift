import Foundation
import PipelineSchema
import Provenance

extension ReleaseController {
    /// Writes the release's report (`report.html`, `report.md`, `report.json`) into
    /// `reports/RELEASE_ID/` beside the history. The release is already recorded: a report that
    /// cannot be written only warns, and never changes the run's outcome.
    func writeReport(_ record: ReleaseRecord) {
        do {
            let folder = try ReleaseReport.folder(history: pipeline.history, releaseID: record.releaseID)
            let live = try ReleaseReport.find(in: history) { $0.releaseID == record.releaseID }?.live
            try ReleaseReport(record: record, liveRelease: live).write(to: folder)
            progress("report: \(folder)/report.html")
        } catch {
            progress(
                "warning: the release report was not written (\(error)); the release is recorded in \(pipeline.history)"
            )
        }
    }
}
