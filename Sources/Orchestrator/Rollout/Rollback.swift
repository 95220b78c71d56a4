import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import RecEngineContract
import StrictYAML
import Traffic

/// `orchestrate rollback`: puts a previously promoted release back, at once when a colour still
/// runs its model, otherwise by redeploying its model (from the model store, verified by digest)
/// on the idle colour, checking health, then moving all traffic to it.
struct Rollback {
    var pipeline: Pipeline
    var deploy: DeploySpec
    var store: StateStore
    var runtime: any DeploymentRuntime
    var nginx: NginxController?
    var history: ReleaseHistory
    var progress: @Sendable (String) -> Void

    /// - Parameters:
    ///   - requested: the release to return to; nil: the promoted release before the live one.
    ///   - live: the live release, nil when none is recorded (or its file is unreadable and a
    ///     release was named).
    func run(to requested: String?, live: LiveRelease?, record: inout ReleaseRecord) async throws {
        var choice = RollbackTarget(requested: requested, live: live)
        try history.forEachLineNewestFirst { line in
            if let record = line.record { choice.consider(record) }
            return !choice.isDecided
        }
        let target: ReleaseRecord
        if let requested {
            guard let found = choice.target else {
                throw OrchestratorError(
                    .invalidInput, "release \(requested) was never promoted (or is not in \(history.path))",
                    hint: "orchestrate history lists the releases; promoted ones have outcome succeeded")
            }
            target = found
        } else {
            guard let found = choice.target else {
                throw OrchestratorError(.stageFailed, "there is no earlier promoted release to roll back to")
            }
            target = found
        }
        guard let sha256 = target.deployment?.modelSHA256 else {
            throw OrchestratorError(.stageFailed, "release \(target.releaseID) recorded no model digest")
        }
        if let refusal = ReleaseController.badModelRefusal(
            sha256, state: try history.policyState(),
            action: "a rollback to \(target.releaseID) is refused; nothing was changed")
        {
            throw refusal
        }
        record.model = .init(path: "", sha256: sha256, version: target.model?.version)
        var events: [RolloutEvent] = []
        progress("rollback to \(target.releaseID) (model \(sha256.prefix(12)))")

        // A colour that still runs that model takes the traffic at once.
        var instance: ColorInstance?
        for color in deploy.colors {
            if let candidate = await runtime.instance(of: color), candidate.modelSHA256 == sha256,
                await runtime.probe(candidate, path: deploy.health.path).healthy
            {
                instance = candidate
                events.append(.init(at: Date(), kind: .reuse, detail: "\(color) still runs the model"))
                break
            }
        }
        if instance == nil {
            guard let stored = try runtime.models.storedModel(sha256: sha256) else {
                throw OrchestratorError(
                    .stageFailed, "the model \(sha256) of \(target.releaseID) is no longer in the model store")
            }
            // Never onto a colour that carries traffic: its requests would fail while it restarts.
            var carrying: [String: Int] = [:]
            if let report = await nginx?.currentTraffic(), report.source == .nginx {
                for backend in report.state.split.serving {
                    if await runtime.instance(of: backend.color) != nil { carrying[backend.color] = backend.weight }
                }
            }
            guard let idle = Self.idleColor(colors: deploy.colors, live: live?.color, carrying: Set(carrying.keys))
            else {
                throw OrchestratorError(
                    .inconsistentState,
                    "every colour carries traffic (\(carrying.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)%" }.joined(separator: ", "))): redeploying \(target.releaseID) on one would fail its requests; nothing was changed",
                    hint:
                        "`orchestrate status` shows what serves; `orchestrate repair` puts all traffic on the live colour, after which a colour is idle"
                )
            }
            progress("redeploying it on \(idle), which carries no traffic")
            let deployed = try await runtime.deploy(
                color: idle, modelDirectory: stored, timeout: deploy.health.timeout.duration)
            let health = try await runtime.waitHealthy(
                deployed, path: deploy.health.path, timeout: deploy.health.timeout.duration)
            guard health.healthy else {
                try? await runtime.stop(color: idle)
                throw OrchestratorError(
                    .stageFailed, "\(idle) did not become healthy (\(health.detail)); traffic was not moved")
            }
            events.append(.init(at: Date(), kind: .deploy, detail: "\(idle) redeployed with \(sha256.prefix(12))"))
            instance = deployed
        }
        guard let instance else { return }
        let mode: TrafficSplit.Mode = pipeline.traffic?.mode == .weighted ? .weighted : .sticky
        try await nginx?.apply(TrafficSplit(mode: mode, backends: [instance.backend(weight: 100)]))
        events.append(.init(at: Date(), kind: .shift, detail: "\(instance.color) 100%"))
        try store.setLive(
            LiveRelease(
                color: instance.color, releaseID: target.releaseID, modelSHA256: sha256,
                modelVersion: instance.modelVersion))
        try? await ServingAdapter.writeTargets(
            runtime: runtime, colors: deploy.colors, store: store, service: deploy.service)
        progress("rolled back: \(instance.color) is live with the model of \(target.releaseID)")
        record.deployment = .init(runtime: runtime.name, color: instance.color, modelSHA256: sha256)
        record.rollout = .init(
            live: live?.color, target: instance.color, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [],
            events: events)
    }

    /// The colour to redeploy a release on: one that carries no traffic (nginx sends it nothing,
    /// or it does not run, so nginx's balancer already sends its share to the other colour), the
    /// live colour only when no other is idle; nil when every colour carries traffic.
    static func idleColor(colors: [String], live: String?, carrying: Set<String>) -> String? {
        colors.first { $0 != live && !carrying.contains($0) } ?? colors.first { !carrying.contains($0) }
    }
}

/// Which promoted release `orchestrate rollback` returns to, from the history read newest first:
/// the one named, or else the newest promoted before the live release that serves another model
/// (the newest promoted before it when all serve the same). Decided as soon as the records read
/// allow, so that a long history is read only back to the answer.
struct RollbackTarget {
    let requested: String?
    let live: LiveRelease?
    /// Whether the live release's record was passed: what follows is older than it.
    private var passedLive: Bool
    /// The newest promoted release older than the live one, and the newest serving another model.
    private var newest: ReleaseRecord?
    private var newestOther: ReleaseRecord?
    /// The same two over every promoted release, for when the live release is not in the history.
    private var newestOverall: ReleaseRecord?
    private var newestOtherOverall: ReleaseRecord?
    private(set) var isDecided = false

    init(requested: String?, live: LiveRelease?) {
        self.requested = requested
        self.live = live
        passedLive = live == nil
    }

    /// Looks at the next older record.
    mutating func consider(_ record: ReleaseRecord) {
        guard !isDecided, (record.action ?? .release) == .release, record.outcome == .succeeded,
            let sha256 = record.deployment?.modelSHA256,
            !record.dryRun
        else { return }
        if let requested {
            if record.releaseID == requested {
                newest = record
                isDecided = true
            }
            return
        }
        if !passedLive && record.releaseID == live?.releaseID {
            passedLive = true
            return
        }
        if passedLive {
            if newest == nil { newest = record }
            if sha256 != live?.modelSHA256 {
                newestOther = record
                isDecided = true
            }
        } else {
            if newestOverall == nil { newestOverall = record }
            if newestOtherOverall == nil && sha256 != live?.modelSHA256 { newestOtherOverall = record }
        }
    }

    /// The release to return to; nil when there is none.
    var target: ReleaseRecord? {
        if requested != nil { return newest }
        return passedLive ? newestOther ?? newest : newestOtherOverall ?? newestOverall
    }
}
