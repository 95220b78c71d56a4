import Foundation
import EngineAPI
import StrictYAML
import HTTPTransport
import RecEngine
import Traffic

/// A content-addressed store of model directories (`FOLDER/<sha256 of model.safetensors>/`), so
/// that retraining in place never changes what a colour serves, and rollbacks find old models.
public struct ModelStore: Sendable {
    public var folder: String

    /// Copies a model into the store (once) and returns the copy's path and digest.
    public func store(modelDirectory: String) throws -> (path: String, sha256: String) {
        let tensors = try ArtifactDigest.of(modelDirectory + "/" + ModelDirectory.tensorsFile)
        guard let sha256 = tensors.sha256 else {
            throw OrchestratorError(.stageFailed, "no model at \(modelDirectory) (model.safetensors is missing)")
        }
        let target = "\(folder)/\(sha256)"
        if !FileManager.default.fileExists(atPath: target + "/" + ModelDirectory.manifestFile) {
            let temporary = target + ".tmp-\(getpid())"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: modelDirectory, toPath: temporary)
            try? FileManager.default.removeItem(atPath: target)
            try FileManager.default.moveItem(atPath: temporary, toPath: target)
        }
        return (target, sha256)
    }

    /// The stored model with this digest, if the store has it.
    public func storedModel(sha256: String) -> String? {
        let path = "\(folder)/\(sha256)"
        return FileManager.default.fileExists(atPath: path + "/" + ModelDirectory.manifestFile) ? path : nil
    }
}

/// One running colour of the service.
public struct ColorInstance: Sendable, Codable, Equatable {
    public var color: String
    public var pid: Int32?
    /// host:port the colour answers on.
    public var address: String
    public var modelSHA256: String
    public var modelVersion: String
    /// The model directory it serves (the runtime's copy).
    public var modelPath: String

    enum CodingKeys: String, CodingKey {
        case color, pid, address
        case modelSHA256 = "model_sha256"
        case modelVersion = "model_version"
        case modelPath = "model_path"
    }
}

/// Where the colours run. The `process` runtime runs `recengine serve` processes on this machine;
/// the Docker runtime runs containers behind the same interface.
public protocol DeploymentRuntime: Sendable {
    /// Starts `color` serving the model directory, replacing what that colour ran before, and
    /// returns once it listens (not yet health-checked).
    func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance
    /// The colour's instance if it is running.
    func instance(of color: String) async -> ColorInstance?
    /// Stops the colour; stopping a colour that does not run is not an error.
    func stop(color: String) async throws
    /// The last lines the colour logged, for error messages.
    func logTail(of color: String) async -> String
    /// The runtime's copy of the model with this digest (model.safetensors' SHA-256), if it kept one.
    func storedModel(sha256: String) -> String?
}

extension DeploymentRuntime {
    /// Polls `GET path` until it answers 200 or the timeout passes.
    public func waitHealthy(_ instance: ColorInstance, path: String, timeout: Duration) async -> HealthProbe {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = HealthProbe(healthy: false, detail: "no answer yet")
        while clock.now < deadline {
            last = await probe(instance, path: path)
            if last.healthy { return last }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return last
    }

    /// One `GET path` against the instance.
    public func probe(_ instance: ColorInstance, path: String) async -> HealthProbe {
        do {
            let response = try await HTTPClient.get("http://\(instance.address)\(path)", timeout: .seconds(2))
            return HealthProbe(healthy: response.status == 200, detail: "HTTP \(response.status)")
        } catch {
            return HealthProbe(healthy: false, detail: "\(error)")
        }
    }
}

public struct HealthProbe: Sendable, Codable, Equatable {
    public var healthy: Bool
    public var detail: String
}
