import DurableFiles
import Foundation

/// The fields of a model's `manifest.json` that say which model it is: what a controller reads of
/// a model directory to record and label it (the rest is RecEngine's `ModelManifest`).
public struct ModelIdentity: Sendable, Decodable, Equatable {
    /// The manifest format this reads (RecEngine's `ModelManifest.currentFormatVersion`).
    public static let formatVersion = 1

    public var formatVersion: Int
    /// The name given at training, if any.
    public var version: String?
    /// SHA-256 of `model.safetensors`.
    public var modelSHA256: String

    /// The version shown to clients: the given one, else the digest's first 12 hex digits.
    public var displayVersion: String {
        version ?? String(modelSHA256.prefix(12))
    }

    enum CodingKeys: String, CodingKey {
        case version
        case formatVersion = "format_version"
        case modelSHA256 = "model_sha256"
    }

    /// Reads the identity from the manifest of the model directory `directory`: a regular file of
    /// at most `ModelFiles.maximumManifestSize` bytes (a FIFO or a device is never opened).
    ///
    /// - Throws: `RecEngineError` `.corruptModel` naming the manifest and what is wrong.
    public static func read(modelDirectory directory: String) throws -> ModelIdentity {
        let path = URL(fileURLWithPath: directory).appendingPathComponent(ModelFiles.manifest).path
        func corrupt(_ message: String) -> RecEngineError {
            RecEngineError(
                .corruptModel, message, location: path,
                hint: "train the model again (recengine train) or restore it from a release")
        }
        let data: Data
        do {
            guard let contents = try AtomicFile.read(path, limit: ModelFiles.maximumManifestSize) else {
                throw corrupt("\(ModelFiles.manifest) does not exist")
            }
            data = contents
        } catch let error as AtomicFileError {
            throw corrupt("cannot read \(ModelFiles.manifest): \(error)")
        }
        let identity: ModelIdentity
        do {
            identity = try JSONDecoder().decode(ModelIdentity.self, from: data)
        } catch {
            throw corrupt("\(ModelFiles.manifest) does not parse: \(error)")
        }
        guard identity.formatVersion == formatVersion else {
            throw corrupt("format version \(identity.formatVersion) is not supported (expected \(formatVersion))")
        }
        return identity
    }
}
