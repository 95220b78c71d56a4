import DurableFiles
import Foundation
import OrchestratorSupport
import RecEngineContract
import StrictYAML

/// A content-addressed store of model directories (`FOLDER/<sha256 of model.safetensors>/`), so
/// that retraining in place never changes what a colour serves, and rollbacks find old models.
/// A copy is checked against its name whenever it is used: a damaged copy is replaced from the
/// model being released, and never redeployed by a rollback.
public struct ModelStore: Sendable {
    public var folder: String

    public init(folder: String) {
        self.folder = folder
    }

    /// Copies a model into the store (once; again when the stored copy is damaged) and returns
    /// the copy's path, digest, and whether a damaged copy was replaced.
    public func store(modelDirectory: String) throws -> (path: String, sha256: String, repaired: Bool) {
        let tensors = try ArtifactDigest.of(modelDirectory + "/" + ModelFiles.tensors)
        guard let sha256 = tensors.sha256 else {
            throw OrchestratorError(.stageFailed, "no model at \(modelDirectory) (model.safetensors is missing)")
        }
        let target = "\(folder)/\(sha256)"
        let exists = FileManager.default.fileExists(atPath: target)
        if exists, (try? isIntact(target, sha256: sha256)) == true { return (target, sha256, false) }
        let temporary = target + ".tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: temporary)
        try AtomicFile.createFolder(folder)
        try FileManager.default.copyItem(atPath: modelDirectory, toPath: temporary)
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.moveItem(atPath: temporary, toPath: target)
        return (target, sha256, exists)
    }

    /// The stored model with this digest, checked: nil when the store does not have it.
    ///
    /// - Throws: `OrchestratorError` `.stageFailed` when the copy is damaged.
    public func storedModel(sha256: String) throws -> String? {
        let path = "\(folder)/\(sha256)"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard try isIntact(path, sha256: sha256) else {
            throw OrchestratorError(
                .stageFailed,
                "the stored copy of model \(sha256.prefix(12)) at \(path) is damaged (its digest no longer matches)",
                hint: "release that model again from its training data, or restore the copy from a backup")
        }
        return path
    }

    /// Whether the copy's tensors have the digest it is named by and its manifest is there.
    func isIntact(_ path: String, sha256: String) throws -> Bool {
        guard FileManager.default.fileExists(atPath: path + "/" + ModelFiles.manifest) else { return false }
        return try ArtifactDigest.of(path + "/" + ModelFiles.tensors).sha256 == sha256
    }
}
