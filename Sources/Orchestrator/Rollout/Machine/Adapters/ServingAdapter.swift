import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Traffic

/// nginx and the deployment runtime as the rollout's effects use them: it remembers the
/// instances it deployed, located and looked at, and builds each split from them.
actor ServingAdapter: TrafficSwitch, ColourRuntime {
    let runtime: any DeploymentRuntime
    let nginx: NginxController?
    let target: String
    let live: LiveRelease?
    let healthPath: String
    let healthTimeout: PipelineDuration
    let mode: TrafficSplit.Mode
    /// `traffic.interleave`: put in every split below 100 % that has both colours.
    let interleave: InterleaveSpec?
    let releaseID: String
    /// For Prometheus' targets.
    let colors: [String]
    let service: String
    let store: StateStore
    /// A colour's instance as last deployed or located.
    private var instances: [String: ColorInstance] = [:]
    /// The new colour as deployed.
    private var deployed: ColorInstance?
    /// The instances that answered at the last look (nil: none did).
    private var looked: (target: ColorInstance?, live: ColorInstance?) = (nil, nil)
    /// The split the watch last put in force; nil until the first look of a step reads it.
    private var watched: TrafficSplit?

    init(
        runtime: any DeploymentRuntime, nginx: NginxController?, target: String, live: LiveRelease?, healthPath: String,
        healthTimeout: PipelineDuration,
        mode: TrafficSplit.Mode, interleave: InterleaveSpec?, releaseID: String, colors: [String], service: String,
        store: StateStore
    ) {
        self.runtime = runtime
        self.nginx = nginx
        self.target = target
        self.live = live
        self.healthPath = healthPath
        self.healthTimeout = healthTimeout
        self.mode = mode
        self.interleave = interleave
        self.releaseID = releaseID
        self.colors = colors
        self.service = service
        self.store = store
    }

    // MARK: Traffic

    func shift(weight: Int) async throws -> TrafficChange {
        watched = nil
        guard let nginx, let deployed else { return TrafficChange() }
        let applied = runtime.instancesMove ? await nginx.currentSplit() : nil
        var liveInstance: ColorInstance?
        if let live, weight < 100 {
            guard
                let running = await healthyInstance(
                    of: live.color, lastKnown: Self.instance(of: live.color, in: applied))
            else {
                throw OrchestratorError(
                    .stageFailed, "the live colour \(live.color) is not running: no traffic can stay on it")
            }
            liveInstance = running
        }
        let targetInstance =
            runtime.instancesMove
            ? await healthyInstance(of: deployed.color, lastKnown: deployed) ?? deployed : deployed
        let done = try await nginx.apply(split(live: liveInstance, target: targetInstance, weight: weight))
        return TrafficChange(replaced: done.replacementNote)
    }

    func sendAllTraffic(to color: String) async throws -> TrafficChange {
        guard let nginx else { return TrafficChange() }
        guard let instance = instances[color] else {
            throw OrchestratorError(.stageFailed, "\(color) is not running: no traffic can go to it")
        }
        // Putting traffic back waits for no disk write: the state file is best effort.
        let done = try await nginx.apply(
            TrafficSplit(mode: mode, backends: [instance.backend(weight: 100)]), stateFile: .bestEffort)
        return TrafficChange(replaced: done.replacementNote, stateFileBehind: done.unsaved?.message)
    }

    func reapply(weight: Int) async throws -> TrafficChange {
        guard let nginx else { return TrafficChange() }
        let lastApplied = watched
        // A colour that did not answer this time keeps the addresses nginx has for it.
        let liveShare =
            weight < 100 ? live.flatMap { looked.live ?? Self.instance(of: $0.color, in: lastApplied) } : nil
        guard let targetShare = looked.target ?? Self.instance(of: target, in: lastApplied) ?? deployed else {
            throw OrchestratorError(.stageFailed, "\(target) has no known address")
        }
        let wanted = split(live: liveShare, target: targetShare, weight: weight)
        let done = try await nginx.apply(wanted)
        watched = wanted
        return TrafficChange(
            replaced: done.replacementNote,
            upstream: wanted.backends.map { RolloutMachine.Upstream(color: $0.color, addresses: $0.addresses) })
    }

    func stop() async {
        await nginx?.stop()
    }

    /// All users on the live colour, the new one in the split at 0 % and shadowed: nginx asks it
    /// for `percent` % of the `/recommend` requests once the live answer was sent, and compares.
    func startShadow(percent: Int, experiment: String) async throws -> TrafficChange {
        watched = nil
        guard let nginx, let deployed, let live else { return TrafficChange() }
        let applied = runtime.instancesMove ? await nginx.currentSplit() : nil
        guard
            let liveInstance = await healthyInstance(
                of: live.color, lastKnown: Self.instance(of: live.color, in: applied))
        else {
            throw OrchestratorError(
                .stageFailed, "the live colour \(live.color) is not running: no traffic can stay on it")
        }
        let targetInstance =
            runtime.instancesMove
            ? await healthyInstance(of: deployed.color, lastKnown: deployed) ?? deployed : deployed
        let split = TrafficSplit(
            mode: mode, backends: [liveInstance.backend(weight: 100), targetInstance.backend(weight: 0)],
            shadow: .init(color: deployed.color, percent: percent, experiment: experiment))
        let done = try await nginx.apply(split)
        return TrafficChange(replaced: done.replacementNote)
    }

    func lookShadow() async throws -> ShadowCounts? {
        guard let nginx else { return nil }
        return try await nginx.shadow()
    }

    // MARK: Colours

    func deploy(_ color: String, model: RolloutMachine.ModelSource) async throws -> RolloutMachine.Instance {
        let timeout = healthTimeout
        let instance: ColorInstance
        switch model {
        case .directory(let directory):
            instance = try await runtime.deploy(color: color, modelDirectory: directory, timeout: timeout.duration)
            let health = try await runtime.waitHealthy(instance, path: healthPath, timeout: timeout.duration)
            guard health.healthy else {
                throw OrchestratorError(
                    .stageFailed,
                    "\(color) did not answer GET \(healthPath) with 200 within \(timeout) (\(health.detail))"
                        + indented(await runtime.logTail(of: color)))
            }
            deployed = instance
        case .stored(let digest):
            guard let directory = try runtime.models.storedModel(sha256: digest) else {
                throw OrchestratorError(.stageFailed, "model \(digest.prefix(12)) is not in the model store")
            }
            instance = try await runtime.deploy(color: color, modelDirectory: directory, timeout: timeout.duration)
            let health = try await runtime.waitHealthy(instance, path: healthPath, timeout: timeout.duration)
            guard health.healthy else {
                throw OrchestratorError(
                    .stageFailed, "it did not answer GET \(healthPath) with 200 within \(timeout) (\(health.detail))")
            }
        }
        instances[color] = instance
        return RolloutMachine.Instance(
            color: color, addresses: instance.addresses, modelSHA256: instance.modelSHA256,
            modelVersion: instance.modelVersion)
    }

    func locate(_ color: String, _ how: RolloutMachine.Locate) async -> Bool {
        let found: ColorInstance?
        switch how {
        case .servingOrLastKnown:
            let applied = runtime.instancesMove ? await nginx?.currentSplit() : nil
            found = await servingInstance(of: color, lastKnown: Self.instance(of: color, in: applied))
        case .serving:
            found = await servingInstance(of: color)
        case .running:
            found = await healthyInstance(of: color)
        }
        instances[color] = found
        return found != nil
    }

    func stop(_ color: String) async throws {
        try await runtime.stop(color: color)
    }

    nonisolated func hasStoredModel(sha256: String) -> Bool {
        ((try? runtime.models.storedModel(sha256: sha256)) ?? nil) != nil
    }

    func look(weight: Int) async -> StepWatch.Look {
        guard let nginx else { return StepWatch.Look(nginxRunning: true, target: .gone, live: nil, upstream: [:]) }
        if watched == nil { watched = await nginx.currentSplit() }
        let applied = watched
        let (targetLook, targetInstance) = await look(at: target, lastKnown: Self.instance(of: target, in: applied))
        var liveLook: StepWatch.Colour?
        var liveInstance: ColorInstance?
        if let live, weight < 100 {
            (liveLook, liveInstance) = await look(at: live.color, lastKnown: Self.instance(of: live.color, in: applied))
        }
        looked = (targetInstance, liveInstance)
        let nginxRunning = await nginx.isRunning()
        return StepWatch.Look(
            nginxRunning: nginxRunning, orphanedWorkers: nginxRunning ? [] : await nginx.orphanedWorkers(),
            target: targetLook, live: liveLook,
            upstream: Dictionary(
                (applied?.backends ?? []).map { ($0.color, $0.addresses) }, uniquingKeysWith: { first, _ in first }))
    }

    func writeTargets() async {
        try? await Self.writeTargets(runtime: runtime, colors: colors, store: store, service: service)
    }

    // MARK: Helpers

    /// The split at `weight`; with `traffic.interleave` and both colours, the new colour stays
    /// in it at 0 % for the interleaved users.
    func split(live: ColorInstance?, target instance: ColorInstance?, weight: Int) -> TrafficSplit {
        var backends: [TrafficSplit.Backend] = []
        let interleave =
            live != nil && instance != nil ? self.interleave?.split(weight: weight, releaseID: releaseID) : nil
        if let live, weight < 100 { backends.append(live.backend(weight: 100 - weight)) }
        if let instance, weight > 0 || interleave != nil { backends.append(instance.backend(weight: weight)) }
        return TrafficSplit(mode: mode, backends: backends, interleave: interleave)
    }

    /// The colour's instance when it serves: `healthyInstance`, which probes only instances that
    /// move, and otherwise answering the health check within 3 s.
    func servingInstance(of color: String, lastKnown: ColorInstance? = nil) async -> ColorInstance? {
        guard let instance = await healthyInstance(of: color, lastKnown: lastKnown) else { return nil }
        if runtime.instancesMove { return instance }
        let health = try? await runtime.waitHealthy(instance, path: healthPath, timeout: .seconds(3))
        return health?.healthy == true ? instance : nil
    }

    /// The colour's instance with only the addresses that answer the health check (all of them
    /// where instances do not move); nil when none runs or none answers. When the runtime cannot
    /// say what runs (a swarm manager that does not answer), the addresses of `lastKnown` are
    /// probed instead: tasks serve on without their manager. A runtime that answers "none" is
    /// believed.
    func healthyInstance(of color: String, lastKnown: ColorInstance? = nil) async -> ColorInstance? {
        var instance = await runtime.instance(of: color)
        if instance == nil, lastKnown != nil, !(await runtime.canTellWhatRuns()) { instance = lastKnown }
        guard var instance else { return nil }
        guard runtime.instancesMove else { return instance }
        let healthy = await runtime.probeEach(instance, path: healthPath).filter(\.probe.healthy).map(\.address)
        guard let first = healthy.first else { return nil }
        instance.addresses = healthy
        instance.address = first
        return instance
    }

    /// A colour as the step's watch sees it, and its instance with the addresses that answered.
    /// When the runtime cannot say what runs (a swarm manager that does not answer), the
    /// addresses of `lastKnown` are probed: tasks serve on without their manager.
    func look(at color: String, lastKnown: ColorInstance?) async -> (StepWatch.Colour, ColorInstance?) {
        var instance = await runtime.instance(of: color)
        if instance == nil, lastKnown != nil, !(await runtime.canTellWhatRuns()) { instance = lastKnown }
        guard var instance else { return (.gone, nil) }
        let probes = await runtime.probeEach(instance, path: healthPath)
        let healthy = probes.filter(\.probe.healthy).map(\.address)
        guard let first = healthy.first else {
            return (.silent(detail: probes.map { "\($0.address): \($0.probe.detail)" }.joined(separator: "; ")), nil)
        }
        if runtime.instancesMove {
            instance.addresses = healthy
            instance.address = first
        }
        return (.serving(instance.addresses), instance)
    }

    /// A colour's addresses as a split lists them (what nginx sends its share to), for probing
    /// when the runtime cannot say what runs.
    static func instance(of color: String, in split: TrafficSplit?) -> ColorInstance? {
        guard let backend = split?.backends.first(where: { $0.color == color }), let first = backend.addresses.first
        else { return nil }
        return ColorInstance(
            color: color, pid: nil, address: first, addresses: backend.addresses, modelSHA256: "", modelVersion: "",
            modelPath: "")
    }

    /// Writes Prometheus' file_sd targets: the colours that run.
    static func writeTargets(
        runtime: any DeploymentRuntime, colors: [String], store: StateStore, service: String
    ) async throws {
        var instances: [ColorInstance] = []
        for color in colors {
            if let instance = await runtime.instance(of: color) { instances.append(instance) }
        }
        try store.writeTargets(instances, service: service)
    }
}
