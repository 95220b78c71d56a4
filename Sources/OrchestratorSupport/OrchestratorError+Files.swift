package import DurableFiles
import Foundation

extension OrchestratorError {
    /// A file that could not be written: a full disk (ENOSPC, EDQUOT) is `.diskFull` (exit 5) and
    /// says so, with the file and what to do; anything else is `.fileSystem`.
    ///
    /// - Parameters:
    ///   - what: what the file is, for people ("the history").
    ///   - unchanged: what the failure left as it was ("the history is as it was").
    package static func writing(_ error: AtomicFileError, what: String, unchanged: String? = nil) -> OrchestratorError {
        let reason = String(cString: strerror(error.code))
        let state = unchanged.map { "; \($0)" } ?? ""
        guard error.isDiskFull && error.code != EFBIG else {
            return OrchestratorError(
                .fileSystem, "cannot write \(what) \(error.path): \(error.step) failed: \(reason)\(state)",
                hint: "check that the folder exists and is writable by this user")
        }
        return diskFull(
            path: error.path, doing: "writing \(what) (\(error.step))", code: error.code, unchanged: unchanged)
    }

    /// No space left for `path`: the disk (or the user's quota) is full.
    package static func diskFull(
        path: String, doing: String, code: Int32, unchanged: String? = nil
    ) -> OrchestratorError {
        let device = code == EDQUOT ? "the disk quota" : "the disk"
        return OrchestratorError(
            .diskFull,
            "\(device) holding \(path) is full (\(code == EDQUOT ? "EDQUOT" : "ENOSPC"): \(String(cString: strerror(code)))) while \(doing)"
                + (unchanged.map { "; \($0)" } ?? ""),
            hint:
                "free space on that file system (df -h \(URL(fileURLWithPath: path).deletingLastPathComponent().path)), "
                + "then run orchestrate recover PIPELINE: it converges and records what was left undone")
    }
}
