import EngineAPI
import Foundation
import HTTPTransport
import OrchestratorSupport
import PipelineSchema
public import Provenance
import StrictYAML
import TextSafety
public import Traffic

/// One running colour of the service.
public struct ColorInstance: Sendable, Codable, Equatable {
    public var color: String
    public var pid: Int32?
    /// host:port the colour answers on (its first instance's when it has several).
    public var address: String
    /// host:port of every instance (the tasks of a Swarm service on several hosts); one address for
    /// a process or a container.
    public var addresses: [String]
    public var modelSHA256: String
    public var modelVersion: String
    /// The model directory it serves (the runtime's copy).
    public var modelPath: String
    /// Where the instances run, for `status` (Swarm: tasks per node and how ports are
    /// published); nil for one process or container.
    public var placement: String?

    public init(
        color: String, pid: Int32?, address: String, addresses: [String]? = nil, modelSHA256: String,
        modelVersion: String, modelPath: String
    ) {
        self.color = color
        self.pid = pid
        self.address = address
        self.addresses = addresses ?? [address]
        self.modelSHA256 = modelSHA256
        self.modelVersion = modelVersion
        self.modelPath = modelPath
    }

    enum CodingKeys: String, CodingKey {
        case color, pid, address, addresses, placement
        case modelSHA256 = "model_sha256"
        case modelVersion = "model_version"
        case modelPath = "model_path"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        color = try container.decode(String.self, forKey: .color)
        pid = try container.decodeIfPresent(Int32.self, forKey: .pid)
        address = try container.decode(String.self, forKey: .address)
        addresses = try container.decodeIfPresent([String].self, forKey: .addresses) ?? [address]
        modelSHA256 = try container.decode(String.self, forKey: .modelSHA256)
        modelVersion = try container.decode(String.self, forKey: .modelVersion)
        modelPath = try container.decode(String.self, forKey: .modelPath)
        placement = try container.decodeIfPresent(String.self, forKey: .placement)
    }

    /// Where the load balancer sends this colour's share.
    public func backend(weight: Int) -> TrafficSplit.Backend {
        TrafficSplit.Backend(color: color, addresses: addresses, weight: weight)
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
    /// Whether the runtime can say what runs now (its engine or swarm manager answers):
    /// `instance(of:)` is nil both for a colour that does not run and when it cannot tell.
    func canTellWhatRuns() async -> Bool
    /// Stops the colour; stopping a colour that does not run is not an error.
    func stop(color: String) async throws
    /// The last lines the colour logged since it was last started, for error messages.
    func logTail(of color: String) async -> String
    /// Whether a colour's instances can move while it runs (tasks rescheduled after a host is
    /// lost): the controller then follows them during a step and re-renders the upstream.
    var instancesMove: Bool { get }
    /// The fewest healthy instances the new colour may have during a step.
    var minimumHealthyInstances: Int { get }
}

extension DeploymentRuntime {
    public var instancesMove: Bool { false }
    public var minimumHealthyInstances: Int { 1 }
    public func canTellWhatRuns() async -> Bool { true }
}

extension DeploymentRuntime {
    /// Polls `GET path` on every address of the instance until all answer 200 or the timeout
    /// passes.
    public func waitHealthy(_ instance: ColorInstance, path: String, timeout: Duration) async throws -> HealthProbe {
        var last = HealthProbe(healthy: false, detail: "no answer yet")
        let healthy = try await poll(every: .milliseconds(200), for: timeout) { () async -> HealthProbe? in
            last = await probe(instance, path: path)
            return last.healthy ? last : nil
        }
        return healthy ?? last
    }

    /// One `GET path` against every address of the instance: healthy when all answer 200.
    public func probe(_ instance: ColorInstance, path: String) async -> HealthProbe {
        let probes = await probeEach(instance, path: path)
        let failed = probes.filter { !$0.probe.healthy }
        if failed.isEmpty {
            return HealthProbe(
                healthy: true,
                detail: probes.count == 1 ? probes[0].probe.detail : "\(probes.count) of \(probes.count) answer 200")
        }
        let detail = failed.map { "\($0.address): \($0.probe.detail)" }.joined(separator: "; ")
        return HealthProbe(
            healthy: false,
            detail: probes.count == 1
                ? failed[0].probe.detail : "\(probes.count - failed.count) of \(probes.count) answer 200 (\(detail))")
    }

    /// One `GET path` against each address of the instance, at the same time.
    public func probeEach(_ instance: ColorInstance, path: String) async -> [(address: String, probe: HealthProbe)] {
        await withTaskGroup(of: (Int, HealthProbe).self) { group in
            for (index, address) in instance.addresses.enumerated() {
                group.addTask {
                    do {
                        let response = try await HTTPClient.get(
                            "http://\(address)\(path)", limit: HealthProbe.answerLimit, timeout: .seconds(2))
                        return (index, HealthProbe(healthy: response.status == 200, detail: "HTTP \(response.status)"))
                    } catch {
                        return (index, HealthProbe(healthy: false, detail: "\(error)"))
                    }
                }
            }
            var probes = [HealthProbe?](repeating: nil, count: instance.addresses.count)
            for await (index, probe) in group { probes[index] = probe }
            return zip(instance.addresses, probes).map { ($0, $1!) }
        }
    }
}

public struct HealthProbe: Sendable, Codable, Equatable {
    public var healthy: Bool
    public var detail: String

    /// The most of a health answer read: only its status matters (documented in the README).
    static let answerLimit = HTTPClient.BodyLimit(
        64 << 10, for: "a health probe's answer",
        hint: "a health endpoint answers a short status; check deploy.health.path")

    package init(healthy: Bool, detail: String) {
        self.healthy = healthy
        self.detail = detail
    }
}

/// Text indented by four spaces under a message, one line per line (logs in error messages):
/// escaped, and cut to its last `OutsideText.outputLimit` bytes.
package func indented(_ text: String) -> String {
    let text = OutsideText.bounded(text, limit: OutsideText.outputLimit, lines: .kept, keeping: .tail)
    return text.isEmpty ? "" : "\n" + text.split(separator: "\n").map { "    \($0)" }.joined(separator: "\n")
}
