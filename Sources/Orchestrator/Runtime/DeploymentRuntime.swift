import Foundation
import StrictYAML
import EngineAPI
import HTTPTransport
public import Traffic

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

    public init(color: String, pid: Int32?, address: String, modelSHA256: String, modelVersion: String, modelPath: String) {
        self.color = color
        self.pid = pid
        self.address = address
        self.modelSHA256 = modelSHA256
        self.modelVersion = modelVersion
        self.modelPath = modelPath
    }

    enum CodingKeys: String, CodingKey {
        case color, pid, address
        case modelSHA256 = "model_sha256"
        case modelVersion = "model_version"
        case modelPath = "model_path"
    }
}

/// Where the colours and the load balancer run. Each runtime is one folder under `Runtime/`
/// (`process`: `recengine serve` processes on this machine; `docker`: containers over the Engine
/// API); the controller only ever talks to this interface.
public protocol DeploymentRuntime: Sendable {
    /// The pipeline's name for it (`deploy.runtime`).
    var name: String { get }
    /// The content-addressed copies of the models the colours serve.
    var models: ModelStore { get }
    /// Where nginx runs for this runtime.
    var loadBalancer: any NginxHost { get }
    /// Checks what the runtime needs before anything changes.
    ///
    /// - Throws: `OrchestratorError` `.unreachable` (exit 4) naming what is missing.
    func preflight(colors: [String], loadBalancer: Bool) async throws
    /// What deploying `target` creates, as the plan shows it (without asking the engine).
    func plannedContainers(target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer]
    /// Starts `color` serving the model directory, replacing what that colour ran before, and
    /// returns once it listens (not yet health-checked).
    func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance
    /// The colour's instance if it is running.
    func instance(of color: String) async -> ColorInstance?
    /// Stops the colour; stopping a colour that does not run is not an error.
    func stop(color: String) async throws
    /// The last lines the colour logged since it was last started, for error messages.
    func logTail(of color: String) async -> String
}

extension DeploymentRuntime {
    /// Polls `GET path` until it answers 200 or the timeout passes.
    public func waitHealthy(_ instance: ColorInstance, path: String, timeout: Duration) async throws -> HealthProbe {
        var last = HealthProbe(healthy: false, detail: "no answer yet")
        let healthy = try await poll(every: .milliseconds(200), for: timeout) { () async -> HealthProbe? in
            last = await probe(instance, path: path)
            return last.healthy ? last : nil
        }
        return healthy ?? last
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

/// The runtime a pipeline names.
enum RuntimeFactory {
    static func make(_ deploy: DeploySpec, pipeline: Pipeline, store: StateStore, options: RunOptions) throws -> any DeploymentRuntime {
        switch deploy.runtime {
        case "docker":
            guard let docker = deploy.docker else {
                throw OrchestratorError(.invalidInput, "runtime: docker needs deploy.docker")
            }
            return DockerRuntime(
                engine: try DockerEngine.configured(host: docker.host, certificates: docker.certificates, insecure: docker.insecure ?? false), composePath: docker.compose,
                project: deploy.service, stateFolder: store.folder, nginxFolder: store.nginxFolder,
                nginxConfig: pipeline.traffic?.nginxConfig ?? store.folder + "/nginx.conf")
        default:
            return ProcessRuntime(stateFolder: store.folder, recengine: options.recengineBinary, serveArguments: deploy.args)
        }
    }
}

/// Text indented by four spaces under a message, one line per line (logs in error messages).
func indented(_ text: String) -> String {
    text.isEmpty ? "" : "\n" + text.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
}
